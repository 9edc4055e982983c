// Ctrl-C during a long command (train, detect train, study): the first stops after the step
// in flight (the work's AbortSignal; it saves and says so), the second quits at once (130).

/**
 * Runs `work` with an AbortSignal that the first Ctrl-C aborts; a second Ctrl-C exits.
 * @example await withGracefulStop((signal) => new Trainer(config, { signal }).run());
 */
export async function withGracefulStop<T>(work: (signal: AbortSignal) => Promise<T>, note = ''): Promise<T> {
  const ac = new AbortController();
  const onSigint = (): void => {
    if (ac.signal.aborted) process.exit(130);
    process.stderr.write(`\nresnet: stopping after this step (Ctrl-C again to quit now)${note}\n`);
    ac.abort();
  };
  process.on('SIGINT', onSigint);
  try {
    return await work(ac.signal);
  } finally {
    process.off('SIGINT', onSigint);
  }
}
