/**
 * A stand-in for the `actions` target's worker workflow: the shipped workflow's inputs and job name, bash
 * steps instead of the Agora Action. The job claims the attempt as `mode: worker` does (a create-only push
 * of `refs/agora/attempt-claims/<run>/<item>/<attempt>` naming its workflow run), holds the item until the
 * test opens its gate (a file `<gates>/<item>`), and pushes a result commit in the shape
 * src/executors/actions-result.ts reads (`out.txt` added to the workspace, exit status 0). For target tests
 * that need no container engine and no Node 24 on the runner.
 */
export const standInWorker = (gates: string) => `name: agora-worker
on:
  workflow_dispatch:
    inputs:
      run: { required: true, type: string }
      item: { required: true, type: string }
      attempt: { required: true, type: string }
      runs-on: { required: false, type: string, default: '["self-hosted","agora"]' }
      job: { required: true, type: string }
permissions:
  contents: write
jobs:
  attempt:
    name: agora \${{ inputs.run }} \${{ inputs.item }} \${{ inputs.attempt }}
    runs-on: \${{ fromJSON(inputs.runs-on) }}
    env:
      ATTEMPT: \${{ inputs.run }}/\${{ inputs.item }}/\${{ inputs.attempt }}
    steps:
      - uses: actions/checkout@v4
      - name: claim the attempt
        run: |
          git config user.name 'agora worker'
          git config user.email agora@localhost
          claim=$(git commit-tree "$(git mktree </dev/null)" -m "agora: $ATTEMPT claimed by $GITHUB_RUN_ID/$GITHUB_RUN_ATTEMPT/$RUNNER_NAME")
          git push origin "$claim:refs/agora/attempt-claims/$ATTEMPT"
      - name: the item, held until the test opens its gate
        run: while [ ! -e "${gates}/\${{ inputs.item }}" ]; do sleep 0.1; done
      - name: push the result
        run: |
          echo 'made on the runner' > out.txt
          git add out.txt
          workspace=$(git write-tree)
          log=$(echo 'the item ran' | git hash-object -w --stdin)
          result=$(printf '{"base":"%s","exitCode":0}' "$GITHUB_SHA" | git hash-object -w --stdin)
          tree=$(printf '100644 blob %s\\tlog\\n100644 blob %s\\tresult.json\\n040000 tree %s\\tworkspace\\n' "$log" "$result" "$workspace" | git mktree)
          commit=$(git commit-tree "$tree" -m "agora: result of $ATTEMPT" -m "Agora-Worker: $GITHUB_RUN_ID/$GITHUB_RUN_ATTEMPT/$RUNNER_NAME")
          git push origin "$commit:refs/agora/results/$ATTEMPT"
`;
