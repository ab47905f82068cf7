import type { Command } from 'commander';
import { uninstall } from '../service/install.js';

/** `execsentry uninstall [--root DIR] [--purge]`: reverses install; the state stays unless --purge. */
export function registerUninstallCommand(program: Command): void {
  program
    .command('uninstall')
    .description('stop and remove the systemd service; configuration and state (new-terms history, spool) stay unless --purge')
    .option('--root <dir>', 'remove what `install --root DIR` laid out')
    .option('--purge', 'also remove /etc/execsentry, /var/lib/execsentry, /var/log/execsentry and the execsentry user')
    .action((options: { root?: string; purge?: boolean }) => {
      uninstall({ root: options.root, purge: options.purge === true, print: (line) => process.stdout.write(`${line}\n`) });
    });
}
