import type { Command } from 'commander';

/** Adds `agora app`: serve the GitHub App until SIGINT/SIGTERM (configuration from the environment). */
export function registerAppCommand(program: Command): void {
  program
    .command('app')
    .description('run the GitHub App server (APP_ID, PRIVATE_KEY, WEBHOOK_SECRET; see docs/github-app.md)')
    .action(async () => {
      const { startAppServer } = await import('./main.js');
      const app = await startAppServer(process.env);
      process.stderr.write(`agora app: listening on port ${app.port}\n`);
      await new Promise<void>((resolve) => {
        const stop = (sig: string) => {
          process.stderr.write(`${sig}: stopping (running items are recorded as interrupted)\n`);
          void app.stop().then(resolve);
        };
        process.once('SIGINT', () => stop('SIGINT'));
        process.once('SIGTERM', () => stop('SIGTERM'));
      });
    });
}
