/** Test helpers for the restore drill (lambda/restore-drill). */

/**
 * Drives the handler the way the state machine does (Start → Wait/Check … → Finish, any failure →
 * Abort, Abort retried on DELETE_FAILED up to 5 times).
 */
export async function runLikeStateMachine(
  handler: (e: unknown) => Promise<unknown>,
  advance: (s: number) => void,
): Promise<{ outcome: unknown; failed: boolean }> {
  let drill: unknown = {};
  const abort = async (errorName: string) => {
    for (let attempt = 0; attempt < 6; attempt++) {
      try {
        return { outcome: await handler({ step: 'abort', state: drill, error: { Error: errorName } }), failed: true };
      } catch (e) {
        if ((e as Error).name !== 'DELETE_FAILED') throw e;
        advance(120);
      }
    }
    return { outcome: null, failed: true };
  };
  try {
    drill = await handler({ step: 'start' });
  } catch (e) {
    return abort((e as Error).name);
  }
  for (;;) {
    advance(60);
    let check: { available: boolean };
    try {
      check = (await handler({ step: 'check', state: drill })) as { available: boolean };
    } catch (e) {
      return abort((e as Error).name);
    }
    if (check.available) break;
  }
  try {
    return { outcome: await handler({ step: 'finish', state: drill }), failed: false };
  } catch (e) {
    return abort((e as Error).name);
  }
}
