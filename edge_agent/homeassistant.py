"""Home Assistant MQTT discovery, device-based: one retained message describes the kiosk and all its entities.

Topic ``homeassistant/device/<unique_id>/config``. The payload has the
device (``dev``), the origin (``o``), availability on the kiosk's
``<base>/status`` topic ("online"/"offline", the same retained status and
Last Will the link publishes) and the components (``cmps``). The MQTT link
publishes it on every connect and again whenever Home Assistant announces
itself with "online" on ``homeassistant/status`` (HA's birth message),
because HA may have started with an empty broker.

This payload follows HA's schema, not ours, so it carries no envelope:
a boot_id or seq in it would make every connect look like a changed config.
"""

import enum
import re
from dataclasses import dataclass

from edge_agent.schema import DiscoveryConfig, LinkStatus


class ComponentKind(enum.StrEnum):
    """Home Assistant's entity platform (``p``) of a component."""

    SENSOR = "sensor"
    BINARY_SENSOR = "binary_sensor"  # its template must give ON or OFF


KINDS = tuple(ComponentKind)
STATE_CLASSES = ("measurement", "total", "total_increasing")
_ID = re.compile(r"^[A-Za-z0-9_-]+$")


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


@dataclass(frozen=True)
class Component:
    """One HA entity read from one of the kiosk's state topics.

    ``key`` names the component inside the device and is part of the entity's
    unique_id; by default it is made from ``name``, so renaming an entity
    creates a new one in HA unless ``key`` is given.
    """

    name: str
    kind: str
    state_topic: str
    value_template: str
    unit: str | None = None
    device_class: str | None = None
    key: str | None = None
    state_class: str | None = None  # "measurement" or "total_increasing": HA keeps long-term statistics

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"component {self.name!r}: kind {self.kind!r} is not one of {', '.join(KINDS)}")
        if self.state_class is not None and (self.kind != "sensor" or self.state_class not in STATE_CLASSES):
            raise ValueError(f"component {self.name!r}: state_class {self.state_class!r} needs kind 'sensor' and "
                             f"one of {STATE_CLASSES}")
        if not self.name or not self.state_topic or not self.value_template:
            raise ValueError(f"component {self.name!r}: name, state_topic and value_template are all required")
        if "+" in self.state_topic or "#" in self.state_topic:
            raise ValueError(f"component {self.name!r}: state_topic {self.state_topic!r} must not have wildcards")
        if not _ID.match(self.object_id):
            raise ValueError(f"component {self.name!r}: key {self.object_id!r} may hold only A-Z a-z 0-9 _ -")

    @property
    def object_id(self) -> str:
        return self.key if self.key is not None else _slug(self.name)


class Discovery:
    def __init__(self, *, unique_id: str, name: str, topic_base: str, components, sw_version: str,
                 model: str = "Antrean queue-ticket kiosk", manufacturer: str = "Antrean",
                 prefix: str = "homeassistant"):
        if not _ID.match(unique_id or ""):
            raise ValueError(f"unique_id {unique_id!r} may hold only A-Z a-z 0-9 _ -; use the kiosk's username, "
                             "e.g. serang-kota-kiosk-1")
        components = list(components)
        if not components:
            raise ValueError("give at least one component; a device without entities shows nothing in HA")
        keys = [c.object_id for c in components]
        duplicates = sorted({k for k in keys if keys.count(k) > 1})
        if duplicates:
            raise ValueError(f"component keys {duplicates} appear more than once; give each a distinct key")
        self.unique_id = unique_id
        self.name = name
        self.availability_topic = f"{topic_base}/status"
        self.components = components
        self.sw_version = sw_version
        self.model = model
        self.manufacturer = manufacturer
        self.topic = f"{prefix}/device/{unique_id}/config"

    def payload(self) -> dict:
        return self.config().to_dict()

    def config(self) -> DiscoveryConfig:
        return DiscoveryConfig(
            dev={"ids": [self.unique_id], "name": self.name, "mf": self.manufacturer, "mdl": self.model,
                 "sw": self.sw_version},
            o={"name": "antrean-edge-agent", "sw": self.sw_version},
            availability_topic=self.availability_topic,
            payload_available=LinkStatus.ONLINE,
            payload_not_available=LinkStatus.OFFLINE,
            qos=1,
            cmps={c.object_id: self._component(c) for c in self.components},
        )

    def _component(self, c: Component) -> dict:
        config = {"p": c.kind, "name": c.name, "unique_id": f"{self.unique_id}_{c.object_id}",
                  "state_topic": c.state_topic, "value_template": c.value_template}
        if c.unit is not None:
            config["unit_of_measurement"] = c.unit
        if c.device_class is not None:
            config["device_class"] = c.device_class
        if c.state_class is not None:
            config["state_class"] = c.state_class
        return config
