/**
 * A target's engine could not be reached for a piece of housekeeping (the docker target's removal of
 * containers an earlier process left). Not the end of a serve: its other targets work, and an item on
 * this one fails with the engine's reason (retried as an infrastructure failure) until it is back.
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
