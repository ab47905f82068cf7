import type { Command } from 'commander';
import { install } from '../service/install.js';

/** `execsentry install [--root DIR] [--config FILE]`: the systemd service, its user, config and state. */
export function registerInstallCommand(program: Command): void {
  program
    .command('install')
    .description('install the systemd service: system user, unit, /etc/execsentry/config.json (0600), state directory; start it when systemd runs')
    .option('--root <dir>', 'lay the same files out under this directory (packaging, tests): no user, no systemctl')
    .option('--config <file>', 'install this configuration file (validated first) instead of the default one')
    .action((options: { root?: string; config?: string }) => {
      install({ root: options.root, configFile: options.config, print: (line) => process.stdout.write(`${line}\n`) });
    });
}
