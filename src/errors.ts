/** Exit codes of every execsentry command (ARCHITECTURE.md section 2). */
export const EXIT_OK = 0;
export const EXIT_RUNTIME = 1;
export const EXIT_USAGE = 2;
/** `execsentry status` when no agent answers. */
export const EXIT_NOT_RUNNING = 3;

/**
 * A failure the user can fix: bad input, bad rule file, bad config. The CLI prints `message` as one line
 * (no stack trace) and exits with `exitCode`.
 */
export class UserFacingError extends Error {
  constructor(
    message: string,
    readonly exitCode: number = EXIT_USAGE,
  ) {
    super(message);
    this.name = 'UserFacingError';
  }
}

/** Invalid input: usage, validation of a rule or config file (exit 2). */
export class ValidationError extends UserFacingError {
  constructor(message: string) {
    super(message, EXIT_USAGE);
    this.name = 'ValidationError';
  }
}

/** The environment stops us (no privilege, kernel feature missing, state dir locked) (exit 1). */
export class RuntimeFailure extends UserFacingError {
  constructor(message: string) {
    super(message, EXIT_RUNTIME);
    this.name = 'RuntimeFailure';
  }
}
