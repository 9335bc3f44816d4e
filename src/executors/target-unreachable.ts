/**
 * A target's engine could not be reached when a serve starts: to remove the containers an earlier
 * process left (`reapOrphans`), or to look for a running item's container (`canResume`, after which the
 * attempt counts as lost). Not the end of a serve: its other targets work, and an item on this one fails
 * with the engine's reason (retried as an infrastructure failure) until it is back.
 */
export class TargetUnreachable extends Error {
  constructor(
    readonly target: string,
    message: string,
  ) {
    super(message);
    this.name = 'TargetUnreachable';
  }
}
