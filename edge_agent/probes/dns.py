"""A DNS A query over UDP to one resolver, with a packet builder and parser of our own (RFC 1035).

The system resolver (getaddrinfo) cannot be pointed at one server, has no
timeout of its own and caches; this probe asks exactly the configured
resolver. Several queries per round (each with its own id) make random
loss harmless; the round is ok when an answer says NOERROR with an A record.
"""

import secrets
import socket

from edge_agent.probes import ProbeResult, Target
from edge_agent.probes._common import exchange, figures, reason, seconds
from edge_agent.probes.dnswire import DnsAnswer, DnsFormatError, build_query, parse_response
from edge_agent.probes.resolve import resolve


def probe(target: Target, at: float) -> ProbeResult:
    where = resolve(target.host)
    if where.address is None:
        return ProbeResult(ok=False, at=at, detail=where.note, loss=1.0)
    address = where.address
    try:
        queries = _queries(target)
    except DnsFormatError as exc:
        return ProbeResult(ok=False, at=at, detail=f"{exc}; fix the target's query_name", inconclusive=True)
    answers: dict[int, DnsAnswer] = {}
    by_id = {qid: i for i, (qid, _) in enumerate(queries)}

    def parse(data, _addr):
        try:
            answer = parse_response(data)
        except DnsFormatError:
            return None  # garbage is a stray packet, not an answer
        i = by_id.get(answer.qid)
        if i is not None:
            answers.setdefault(i, answer)
        return i

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.connect((address, target.port))  # replies from anyone else are dropped by the kernel
            rtts, errors = exchange(sock, lambda i: sock.send(queries[i][1]), parse,
                                    target.count, target.spacing_s, target.timeout_s)
        except OSError as exc:
            return ProbeResult(ok=False, at=at, detail=reason(exc), loss=1.0)
    return _result(target, at, rtts, answers, errors)


def _queries(target: Target) -> list[tuple[int, bytes]]:
    ids = set()
    while len(ids) < target.count:
        ids.add(secrets.randbelow(0x10000))
    return [(qid, build_query(qid, target.query_name)) for qid in ids]


def _result(target, at, rtts, answers, errors) -> ProbeResult:
    fig = figures(rtts)
    got = [answers[i] for i in sorted(answers) if rtts[i] is not None]
    good = [a for a in got if a.rcode == 0 and a.addresses]
    n = len(rtts)
    if good:
        ok = fig["loss"] < target.fail_loss
        detail = f"NOERROR {good[0].addresses[0]}, {len(got)}/{n} answers"
    elif got:
        ok = False
        worst = got[-1]
        what = "NOERROR without an A record" if worst.rcode == 0 else worst.rcode_name
        detail = f"{what} for {target.query_name}, {len(got)}/{n} answers"
    else:
        ok = False
        detail = f"no answer to {n} queries within {seconds(target.timeout_s)} s"
        detail += f" ({', '.join(errors)})" if errors else " (timeout)"
    return ProbeResult(ok=ok, at=at, detail=detail, **fig)
