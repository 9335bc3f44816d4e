/**
 * A push made in-process over git's smart HTTP protocol: one POST to `<repo>/git-receive-pack` carrying
 * the ref commands (each with its exact expected old value: the lease) and a pack of the objects they
 * need, answered by receive-pack's status report. The git CLI's push starts three processes here and asks
 * the remote for its whole ref advertisement first (every ref of the repository, `refs/agora/*` of past
 * runs included); the App pushes once per tick, so that was most of an item's cost.
 *
 * The request skips the advertisement (smart HTTP is stateless: receive-pack reads the commands and the
 * pack and checks each old value itself) and asks for the capabilities GitHub and git's own
 * receive-pack have: `report-status`, `side-band-64k`, `quiet`, `atomic`. What the answer cannot settle
 * ends as `unusable` with what was left undone, and the caller pushes those with the git CLI.
 */
/** Point `ref` at `next` (null: delete it) only if the remote has it at `expected` (null: absent). */
export interface RefCommand {
  ref: string;
  next: string | null;
  expected: string | null;
}

const ZERO = '0000000000000000000000000000000000000000';
const FLUSH = Buffer.from('0000');

/** What receive-pack said of each ref: updated, or not with its reason (`ng <ref> <reason>`). */
export type ReportedRef = { ok: true } | { ok: false; reason: string };

export type HttpPushAnswer =
  /** receive-pack's report: every ref's result, and what its hooks printed (`remote:` lines). */
  | { kind: 'report'; refs: Map<string, ReportedRef>; messages: string[] }
  /** Nothing this answer says can be acted on: `why`, for the log. The refs were not updated. */
  | { kind: 'unusable'; why: string };

export interface HttpPushRequest {
  /** The repository's clone URL (https, no credentials). */
  url: string;
  /** The `Authorization` header's value. */
  authorization: string;
  updates: readonly RefCommand[];
  /** All or none (receive-pack's `atomic`). */
  atomic: boolean;
  /** A pack of the objects the remote lacks (an empty pack when it lacks none); null only when every update deletes. */
  pack: Uint8Array | null;
}

/** Sends one push; network failures throw (as a failed `git push` does: whether it landed is unknown). */
export async function pushOverHttp(req: HttpPushRequest, fetchImpl: typeof fetch = fetch): Promise<HttpPushAnswer> {
  const body = receivePackRequest(req.updates, req.atomic, req.pack);
  const response = await fetchImpl(`${req.url.replace(/\/$/, '')}/git-receive-pack`, {
    method: 'POST',
    headers: {
      authorization: req.authorization,
      'content-type': 'application/x-git-receive-pack-request',
      accept: 'application/x-git-receive-pack-result',
      // Named the way git's own clients are (`git/…`): some hosts tell smart-HTTP clients by it.
      'user-agent': 'git/agora',
    },
    body,
    // A POST is never followed elsewhere (git's own client follows only the first request's redirect).
    redirect: 'manual',
  });
  const answer = Buffer.from(await response.arrayBuffer());
  if (response.status !== 200) return { kind: 'unusable', why: `HTTP ${response.status}: ${answer.toString('utf8', 0, 200).trim()}` };
  if (!/x-git-receive-pack-result/.test(response.headers.get('content-type') ?? '')) {
    return { kind: 'unusable', why: `the answer is ${response.headers.get('content-type') ?? 'untyped'}, not a receive-pack result` };
  }
  return parseReceivePackAnswer(answer);
}

/** The request body: ref commands as pkt-lines (capabilities after the first), a flush, then the pack. */
export function receivePackRequest(updates: readonly RefCommand[], atomic: boolean, pack: Uint8Array | null): Buffer {
  if (updates.length === 0) throw new Error('a push needs at least one ref update');
  const capabilities = ['report-status', 'side-band-64k', 'quiet', ...(atomic ? ['atomic'] : []), 'agent=agora'].join(' ');
  const lines = updates.map((u, i) => {
    const command = `${u.expected ?? ZERO} ${u.next ?? ZERO} ${u.ref}`;
    return pktLine(i === 0 ? Buffer.concat([Buffer.from(command), Buffer.from([0]), Buffer.from(capabilities)]) : Buffer.from(command));
  });
  if (pack === null && updates.some((u) => u.next !== null)) throw new Error('a push that creates or moves a ref carries a pack');
  return Buffer.concat([...lines, FLUSH, ...(pack ? [Buffer.from(pack)] : [])]);
}

/**
 * receive-pack's answer: with `side-band-64k`, band 1 carries the status report (itself pkt-lines), band 2
 * what hooks printed, band 3 a fatal error. Without side-band the report comes bare.
 */
export function parseReceivePackAnswer(answer: Buffer): HttpPushAnswer {
  const packets = readPktLines(answer);
  if (packets === null) return { kind: 'unusable', why: 'the answer is not pkt-lines' };
  let report: Buffer[] = packets;
  const messages: string[] = [];
  const banded = packets.length > 0 && packets[0]!.length > 0 && packets[0]![0]! <= 3;
  if (banded) {
    const band1: Buffer[] = [];
    for (const p of packets) {
      const band = p[0];
      const data = p.subarray(1);
      if (band === 1) band1.push(data);
      else if (band === 2)
        messages.push(
          ...data
            .toString('utf8')
            .split(/[\r\n]+/)
            .map((l) => l.trim())
            .filter(Boolean),
        );
      else if (band === 3) return { kind: 'unusable', why: `the remote failed: ${data.toString('utf8').trim()}` };
    }
    const inner = readPktLines(Buffer.concat(band1));
    if (inner === null) return { kind: 'unusable', why: 'the status report is not pkt-lines' };
    report = inner;
  }
  const lines = report.map((p) => p.toString('utf8').replace(/\n$/, ''));
  const unpack = lines.shift();
  if (unpack === undefined || !unpack.startsWith('unpack ')) return { kind: 'unusable', why: `no status report (${unpack ?? 'empty'})` };
  if (unpack !== 'unpack ok') return { kind: 'unusable', why: `the remote could not unpack the objects: ${unpack.slice('unpack '.length)}` };
  const refs = new Map<string, ReportedRef>();
  for (const line of lines) {
    const ok = /^ok (\S+)$/.exec(line);
    const ng = /^ng (\S+) (.*)$/.exec(line);
    if (ok) refs.set(ok[1]!, { ok: true });
    else if (ng) refs.set(ng[1]!, { ok: false, reason: ng[2]! });
  }
  return { kind: 'report', refs, messages };
}

function pktLine(payload: Buffer): Buffer {
  return Buffer.concat([Buffer.from((payload.length + 4).toString(16).padStart(4, '0')), payload]);
}

/** The payloads of the pkt-lines in `data` up to its end (flush packets skipped), or null if it is not pkt-lines. */
function readPktLines(data: Buffer): Buffer[] | null {
  const out: Buffer[] = [];
  let at = 0;
  while (at < data.length) {
    if (at + 4 > data.length) return null;
    const hex = data.toString('latin1', at, at + 4);
    if (!/^[0-9a-f]{4}$/.test(hex)) return null;
    const length = parseInt(hex, 16);
    if (length === 0) {
      at += 4;
      continue;
    }
    if (length < 4 || at + length > data.length) return null;
    out.push(data.subarray(at + 4, at + length));
    at += length;
  }
  return out;
}
