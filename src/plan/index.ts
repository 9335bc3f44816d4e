/** The plan core: schema, ids, lock keys and write scopes, the dependency graph, parsing and validation. */
export * from './schema.js';
export { bindingNameProblem, ID_RULE, idProblem, isSafeId } from './ids.js';
export { lockKeyProblem, locksOverlap, normalizeLockKey, outOfScope, pathInScope } from './locks.js';
export { dependenciesOf, findCycles, formatCycle, topologicalOrder, type FindCyclesOptions, type GraphItem } from './dag.js';
export { MAX_PLAN_BYTES, MAX_PLAN_DEPTH, parsePlanText, syntaxErrorOffset } from './parse.js';
export { BUILTIN_EXECUTORS } from './executors.js';
export { assertValidPlan, PLAN_INVALID_HINT, validatePlan, type ValidationContext, type ValidationResult } from './validate.js';
