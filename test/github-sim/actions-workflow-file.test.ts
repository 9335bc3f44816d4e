/** Workflow files as the simulator reads them: GitHub's parser's verdict, and the refusals the simulator adds on top. */
import { describe, expect, it } from 'vitest';
import { dispatchInputs, parseWorkflow } from '@agora/github-sim/actions/workflow';

const job = 'jobs:\n  a:\n    runs-on: x\n    steps:\n      - run: echo\n';
const problems = (path: string, text: string) =>
  parseWorkflow(path, text).then(
    () => [],
    (e: Error) => e.message.split('\n'),
  );

describe('workflow files', () => {
  it('branches with branches-ignore (or tags, paths with their -ignore) on one event is refused, as GitHub does and the parser does not', async () => {
    expect(await problems('w.yml', `on:\n  push:\n    branches: [main]\n    branches-ignore: [x]\n    paths: [a]\n    paths-ignore: [b]\n${job}`)).toEqual([
      'Invalid workflow file: w.yml (Line: 2, Col: 3): you may only define one of `branches` and `branches-ignore` for a single event',
      'Invalid workflow file: w.yml (Line: 2, Col: 3): you may only define one of `paths` and `paths-ignore` for a single event',
    ]);
    expect(await problems('ok.yml', `on:\n  push:\n    branches: [main]\n    tags-ignore: [x]\n${job}`)).toEqual([]);
  });

  it('more than 25 dispatch inputs is refused; a number input keeps its type and default', async () => {
    const inputs = (n: number) => Array.from({ length: n }, (_, i) => `      k${i}: { type: number, default: ${i} }\n`).join('');
    expect(await problems('many.yml', `on:\n  workflow_dispatch:\n    inputs:\n${inputs(26)}${job}`)).toEqual([
      'Invalid workflow file: many.yml (Line: 4, Col: 7): you may only define up to 25 `inputs` for a `workflow_dispatch` event',
    ]);
    const wf = await parseWorkflow('ok.yml', `on:\n  workflow_dispatch:\n    inputs:\n${inputs(25)}${job}`);
    expect(dispatchInputs(wf).k3).toEqual({ type: 'number', default: 3 });
  });

  it("a misspelt key, an unknown function and broken YAML fail with the parser's messages, each at its line and column", async () => {
    expect(await problems('key.yml', 'on: push\njobs:\n  a:\n    runs_on: x\n    steps:\n      - run: echo\n')).toEqual([
      "Invalid workflow file: key.yml (Line: 4, Col: 5): Unexpected value 'runs_on'",
      'Invalid workflow file: key.yml (Line: 4, Col: 5): Required property is missing: runs-on',
    ]);
    expect(await problems('fn.yml', 'on: push\njobs:\n  a:\n    runs-on: x\n    steps:\n      - run: echo ${{ nosuchfn(github.ref) }}\n')).toEqual([
      "Invalid workflow file: fn.yml (Line: 6, Col: 14): Unrecognized function: 'nosuchfn'",
    ]);
    expect((await problems('yaml.yml', 'on: push\njobs:\n  a: [\n'))[0]).toMatch(/^Invalid workflow file: yaml\.yml \(Line: \d+, Col: \d+\): /);
  });
});
