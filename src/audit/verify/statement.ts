import { errorMessage } from '../../errors.js';
import { auditStatement, type AuditBundle } from '../bundle.js';
import type { InTotoStatement } from '../statement.js';
import type { Failures } from './failures.js';

/**
 * Step "statement": the in-toto statement a signature over this bundle must carry, rebuilt from the bundle
 * alone (never taken from the signature): its version's predicate type, the bundle digest, the patch
 * subjects, the root, and in v2 the repository. Null (failure `signature`) when the bundle's fields cannot
 * make one (a malformed root or commit id); only built when there is a signature to compare it with.
 */
export function expectedStatement(bundle: AuditBundle, f: Failures): InTotoStatement | null {
  try {
    return auditStatement(bundle);
  } catch (error) {
    f.add('signature', `the bundle's statement cannot be built: ${errorMessage(error)}`);
    return null;
  }
}
