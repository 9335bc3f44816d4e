import { USER, type ErrorCodeInfo } from './info.js';

/** Plans: reading and validating plan.json. */
export const PLAN_ERRORS = {
  // Plans
  'plan-not-found': { area: 'plan', exitCode: USER, meaning: 'The plan file cannot be read.', fix: 'Pass the path of an existing plan.json.' },
  'plan-not-json': {
    area: 'plan',
    exitCode: USER,
    meaning: 'The plan is not valid JSON; the message gives the line and column.',
    fix: 'Fix the JSON syntax at the place shown.',
  },
  'plan-duplicate-key': {
    area: 'plan',
    exitCode: USER,
    meaning: 'The plan repeats a key in one object, which JSON parsers resolve differently.',
    fix: 'Keep one of the two keys.',
  },
  'plan-too-large': {
    area: 'plan',
    exitCode: USER,
    meaning: 'The plan is larger than 5 MiB.',
    fix: 'Split the work into smaller plans, or move large inputs into files in the repository.',
  },
  'matrix-file-no-commit': {
    area: 'plan',
    exitCode: USER,
    meaning: 'The plan reads a matrix file, but there is no commit to read it at (not a git repository, or no commits yet).',
    fix: 'Commit the plan and its matrix files in a git repository; a run reads them at its base commit.',
  },
  'plan-too-deep': {
    area: 'plan',
    exitCode: USER,
    meaning: 'A value in the plan nests objects and arrays deeper than the limit.',
    fix: 'Flatten the value, or keep the data in a file and pass its path.',
  },
  'plan-invalid': {
    area: 'plan',
    exitCode: USER,
    meaning: 'The plan breaks one or more rules; each problem is listed with its JSON path.',
    fix: 'Fix each problem at its path (docs/plan.md describes every field).',
  },
  'plan-cyclic': {
    area: 'plan',
    exitCode: USER,
    meaning: 'The items depend on one another in a cycle.',
    fix: 'Remove one dependency of the cycle the message shows.',
  },
  'plan-rejected': {
    area: 'plan',
    exitCode: USER,
    meaning: 'A submitted plan was rejected by the server that took it from the inbox.',
    fix: 'Fix the listed problems and submit the plan again.',
  },
  'executor-unknown': { area: 'plan', exitCode: USER, meaning: 'An item names an executor that does not exist.', fix: 'Use "command" or "dispatch".' },
  'subagent-unknown': {
    area: 'plan',
    exitCode: USER,
    meaning: 'An item dispatches to a subagent the config does not define.',
    fix: 'Use a subagent defined under orch.subagents, or define it.',
  },
  'inputs-invalid': { area: 'plan', exitCode: USER, meaning: "An item's inputs do not fit what its executor takes.", fix: 'Fix the named input in plan.json.' },
  'image-missing': {
    area: 'plan',
    exitCode: USER,
    meaning: 'An item runs on the docker target but no image is named.',
    fix: 'Set inputs.image on the item or commandImage in the config.',
  },
} as const satisfies Readonly<Record<string, ErrorCodeInfo>>;
