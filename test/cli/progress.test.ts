import { afterAll, describe, expect, it } from 'vitest';
import { agora, cleanupTempDirs, makeRepo } from '../support/repo.js';
import { agoraOnTerminal } from '../support/terminal.js';

afterAll(cleanupTempDirs);

const PLAN = JSON.stringify({
  id: 'three',
  queue: 'default',
  items: ['a', 'b', 'c'].map((id) => ({ id, executor: 'command', inputs: { run: `echo ${id} > ${id}.txt` }, depends_on: [], resourceLocks: [`${id}.txt`] })),
});

describe('progress on long commands', () => {
  it('audit, verify --repo and gc count their work on a terminal and print nothing extra when piped', async () => {
    const repo = makeRepo({ 'plan.json': PLAN });
    expect((await agora(repo, ['orch', 'run', 'plan.json'])).code).toBe(0);

    const audit = await agoraOnTerminal(repo, ['orch', 'audit', 'three-1', '--out', 'three.audit.json']);
    expect(audit.code).toBe(0);
    expect(audit.screen).toContain('agora: state commits walked');
    expect(audit.screen).toContain('agora: patches checked 3/3');

    const verify = await agoraOnTerminal(repo, ['verify', 'three.audit.json', '--repo', '.']);
    expect(verify.code).toBe(0);
    expect(verify.screen).toContain('agora: patches checked 3/3');

    const gc = await agoraOnTerminal(repo, ['orch', 'gc', '--older-than', '0s', '--discard-bundles', '--dry-run']);
    expect(gc.screen).toContain('agora: runs looked at 1/1');

    // Piped: the same commands say only what they always said.
    const piped = await agora(repo, ['orch', 'audit', 'three-1', '--out', 'again.audit.json']);
    expect(piped.code).toBe(0);
    expect(piped.stderr).not.toContain('checked');
    expect(piped.stderr).not.toContain('walked');
    const pipedVerify = await agora(repo, ['verify', 'again.audit.json', '--repo', '.']);
    expect(pipedVerify.code).toBe(0);
    expect(pipedVerify.stderr).not.toContain('checked');
    const pipedGc = await agora(repo, ['orch', 'gc', '--older-than', '0s', '--discard-bundles', '--dry-run']);
    expect(pipedGc.stderr).not.toContain('looked at');
  });
});
