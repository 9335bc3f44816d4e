import type { Oid } from '../git/types.js';
import type { BranchCheck } from '../runs/branch-check.js';
import { peopleNote, problemList } from '../github/gate-text.js';
import { codeSpan, plainText } from '../github/untrusted-markdown.js';
import type { PullRequestEvent } from './pull-request-event.js';

/**
 * The job summary of `mode: verify`, as markdown. Run ids, reasons, commit subjects and failure messages
 * are untrusted (a plan or a pusher wrote them): each passes through untrusted-markdown.ts. Pure.
 */
export interface RunVerdict {
  runId: string;
  status: string;
  problems: string[];
  people: BranchCheck['people'];
  /** What the verified bundle backs (`tamper-detecting (same-repository)`), or `none`. */
  claim: string;
  release: { tag: string; url: string } | null;
  bundlePath: string | null;
  /** `checked` against a pinned signer; `unchecked` (recorded, no pin given); `none`. */
  signature: 'checked' | 'unchecked' | 'none';
}

const SIGNATURE_LINE: Record<RunVerdict['signature'], string> = {
  checked: 'checked against the pinned signer',
  unchecked:
    '**not checked**: the bundle is signed, but no signer is pinned (give the step `public-key`, or `certificate-identity`, `certificate-oidc-issuer` and `trusted-root`)',
  none: 'none',
};

export function verifySummary(s: {
  event: PullRequestEvent;
  planCommit: Oid | null;
  verdicts: RunVerdict[];
  problems: string[];
  pin: 'key' | 'identity' | null;
}): string {
  const passed = s.problems.length === 0;
  const lines = [
    `## Agora audit: ${passed ? 'verified' : 'NOT verified'}`,
    '',
    `Pull request #${s.event.number}, head ${codeSpan(s.event.head)}${s.planCommit ? `, plan commit ${codeSpan(s.planCommit)}` : ''}. Signer pinned: ${s.pin === null ? 'none' : s.pin === 'key' ? 'a public key' : 'a certificate identity'}.`,
  ];
  for (const v of s.verdicts) {
    lines.push('', `### Run ${codeSpan(v.runId)} (${plainText(v.status)})`, '');
    lines.push(
      `- Audit bundle: ${v.release ? `release ${codeSpan(v.release.tag)} (${plainText(v.release.url)})` : 'not found'}; claim **${plainText(v.claim)}**`,
    );
    lines.push(`- Signature: ${SIGNATURE_LINE[v.signature]}`);
    lines.push(
      v.problems.length === 0
        ? `- ${v.people.length ? 'Every commit above the ones listed below' : 'Every commit after the plan commit'} is an audited patch.`
        : '- Problems:',
    );
    lines.push(...problemList(v.problems).map((p) => `  ${p}`));
    lines.push(...peopleNote(v.people));
  }
  const general = s.problems.filter((p) => !s.verdicts.some((v) => v.problems.includes(p)));
  if (general.length > 0) lines.push('', 'Problems:', ...problemList(general));
  return `${lines.join('\n')}\n`;
}
