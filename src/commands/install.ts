import type { Command } from 'commander';
import { install } from '../service/install.js';

/** `execsentry install [--root DIR] [--prefix P] [--config FILE]`: the systemd service, its user, config and state. */
export function registerInstallCommand(program: Command): void {
  program
    .command('install')
    .description('install the systemd service: system user, unit, /etc/execsentry/config.json (0600), rules.d, state directory; start it when systemd runs')
    .option('--root <dir>', 'lay the same files out under this directory (packaging, tests): no user, no systemctl')
    .option('--prefix <dir>', 'the unit runs the package npm installed under this prefix (npm install -g --prefix DIR): DIR/lib/node_modules/execsentry; default: the package this execsentry belongs to')
    .option('--config <file>', 'install this configuration file (validated, its rules loaded) instead of the default one')
    .action(async (options: { root?: string; prefix?: string; config?: string }) => {
      await install({ root: options.root, prefix: options.prefix, configFile: options.config, print: (line) => process.stdout.write(`${line}\n`) });
    });
}
