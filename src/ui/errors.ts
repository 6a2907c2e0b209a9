/** An error the user can fix: what went wrong, and how to fix it. Exit code 1. */
export class UserError extends Error {
  override name = 'UserError';
  constructor(
    message: string,
    readonly hint?: string,
    readonly code = 'USER_ERROR',
    readonly exitCode = 1,
  ) {
    super(message);
  }
}

/** The user cancelled (Ctrl-C at a prompt, or declined a plan). Exit code 2. */
export class CancelledError extends UserError {
  constructor(message = 'Cancelled.') {
    super(message, undefined, 'CANCELLED', 2);
  }
}

export function isUserError(error: unknown): error is UserError {
  return error instanceof UserError;
}

export function errorJson(error: unknown): { name: string; code: string; message: string; hint?: string; exitCode: number } {
  if (isUserError(error)) return { name: error.name, code: error.code, message: error.message, hint: error.hint, exitCode: error.exitCode };
  const e = error instanceof Error ? error : new Error(String(error));
  return { name: 'BugError', code: 'BUG', message: e.message, exitCode: 1 };
}
