import type { AuditBundle, AuditReport } from '../audit/bundle.js';
import type { OrchConfig } from '../config/types.js';
import { errorMessage } from '../errors.js';
import type { GitStore, Oid } from '../git/types.js';
import { collectReport } from '../report/collect.js';
import { renderReport } from '../report/html.js';
import type { RunRefs } from '../runs/refs.js';
import { GATE_CHECK_NAME } from './check-names.js';
import type { ReleaseFile } from './run-release.js';
import { codeSpan, markdownLink, plainText } from './untrusted-markdown.js';

/**
 * The run report (`agora orch report`'s page) as the third asset of a finish's release,
 * `<run>.report.html`, beside the audit bundle and its Sigstore bundle.
 *
 * The report is rendered from the App's mirror when the finish has checked the bundle and the branch,
 * and before the release is written, so the verdict it shows is the gate's: the bundle's verification as
 * published and the gate's conclusion and problems on its commit. (The only problems the gate can add
 * afterwards are about writing the release itself, and a release that was not written carries no report.)
 *
 * The report is not evidence. It is uploaded with the draft, never to a published release, and never
 * compared with what a published release holds: two writers render it at different moments, so its bytes
 * differ, and an earlier finish may have published the bundle without one. A report that cannot be
 * rendered, or is too large, leaves the bundle and the gate as they are: the checks say why it is missing.
 */

/** The largest report the App attaches (bytes): a page a browser still opens; a 1,000-item run's is a few MB. */
export const REPORT_MAX_BYTES = 32 * 1024 * 1024;

/** Where the App renders the report from: its own config (declared secrets, to redact) and the repository's secrets. */
export interface ReportSource {
  config: Pick<OrchConfig, 'subagents'>;
  environment: Readonly<Record<string, string | undefined>>;
  /** The largest page attached (default {@link REPORT_MAX_BYTES}). */
  maxBytes?: number;
}

/** The report's asset name. */
export function reportAssetName(runId: string): string {
  return `${runId}.report.html`;
}

/** The report as a release file, or why there is none. */
export type RenderedReport = { file: ReleaseFile } | { problem: string };

export async function renderReleaseReport(
  /** `bundle`: the finish's own, of this run's final state (not built a second time). */
  a: { store: GitStore; refs: RunRefs; runId: string; now: number; bundle: AuditBundle },
  source: ReportSource,
  /** The gate's check of the published bundle, and its conclusion and problems on `sha`. */
  gate: { verdict: AuditReport; sha: Oid; problems: string[] },
): Promise<RenderedReport> {
  const max = source.maxBytes ?? REPORT_MAX_BYTES;
  try {
    const data = await collectReport(a.store, a.refs, a.runId, { config: source.config, environment: source.environment, now: a.now, bundle: a.bundle });
    if (!data) return { problem: `run ${a.runId} is not in the App's mirror` };
    const page = renderReport({
      ...data,
      verdict: gate.verdict,
      gate: { check: GATE_CHECK_NAME, sha: gate.sha, conclusion: gate.problems.length === 0 ? 'success' : 'failure', problems: gate.problems },
    });
    const bytes = Buffer.byteLength(page);
    if (bytes > max) return { problem: `the report is ${bytes} bytes, over the App's limit of ${max} bytes` };
    return { file: { name: reportAssetName(a.runId), data: page, contentType: 'text/html', companion: true } };
  } catch (e) {
    return { problem: `the report could not be rendered: ${errorMessage(e) ?? String(e)}` };
  }
}

/**
 * The checks' line about the report (markdown): a link to the asset and its release; or why the release
 * holds none. Null when no release was published (the checks say that already).
 */
export function reportLine(
  runId: string,
  release: { url: string | null; downloads: Readonly<Record<string, string>> },
  problem: string | undefined,
): string | null {
  if (release.url === null) return null;
  const name = reportAssetName(runId);
  const url = Object.hasOwn(release.downloads, name) ? release.downloads[name] : undefined;
  const where = markdownLink('its release', release.url);
  if (url !== undefined) return `Run report: ${markdownLink(name, url)} in ${where} (a self-contained page: download it and open it in a browser).`;
  const how = `${codeSpan(`agora orch report ${runId}`)} writes it in a clone that fetched \`refs/agora/*\``;
  if (problem !== undefined) return `Run report: not attached to ${where}: ${plainText(problem)}. ${how}.`;
  return `Run report: ${where} holds none (it was published without one, by an earlier finish or another writer, and a published release is never changed); ${how}.`;
}
