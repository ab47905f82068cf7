import type { Command } from 'commander';

/**
 * An example or two per command, shown at the end of its --help and in the man page's EXAMPLES. Kept apart
 * from the commands so that every command has one without each file growing its own help block; `eql`
 * keeps the examples it writes itself. Every example must run as written (the README's rule).
 */
export const EXAMPLES: Readonly<Record<string, readonly string[]>> = {
  run: [
    'sudo execsentry run                                     # built-in rule, alerts on stdout',
    'sudo execsentry run --rules ./my-rules --output file:///var/log/execsentry/alerts.ndjson',
  ],
  events: ["sudo execsentry events --filter 'process.interactive:true and not user.id:0'"],
  kql: ["execsentry events | execsentry kql 'process.name:(bash or dash) and user.name:daemon'", "execsentry kql --count 'process.name:curl' events.ndjson"],
  'rules validate': ['execsentry rules validate ./my-rules export.ndjson'],
  'rules list': ['execsentry rules list ./my-rules --format json'],
  'rules test': ['execsentry rules test --rules ./my-rules --events events.ndjson', 'execsentry events | execsentry rules test --rules ./my-rules --events -'],
  'store list': ['sudo runuser -u execsentry -- execsentry store list --state-dir /var/lib/execsentry'],
  'store forget': ['sudo runuser -u execsentry -- execsentry store forget --rule 9c5b2382-19d2-4b5d-8f14-9e1631a3acdb --term /usr/bin/bash'],
  'outputs replay-dead-letter': [
    'sudo systemctl stop execsentry',
    'sudo runuser -u execsentry -- execsentry outputs replay-dead-letter --config /etc/execsentry/config.json',
    'sudo systemctl start execsentry',
  ],
  install: ['sudo execsentry install', 'sudo execsentry install --root /tmp/pkgroot   # lay the files out for a package'],
  uninstall: ['sudo execsentry uninstall --purge'],
  status: ['sudo execsentry status', 'sudo execsentry status --json'],
};

/** The command's path below the program: "rules test". */
export function commandPath(command: Command): string {
  const names: string[] = [];
  for (let at: Command | null = command; at?.parent != null; at = at.parent) names.unshift(at.name());
  return names.join(' ');
}

/** Appends each command's examples to its --help. */
export function addExamples(program: Command): void {
  const visit = (command: Command): void => {
    const examples = EXAMPLES[commandPath(command)];
    if (examples !== undefined) command.addHelpText('after', `\nExample${examples.length > 1 ? 's' : ''}:\n${examples.map((line) => `  ${line}`).join('\n')}`);
    command.commands.forEach(visit);
  };
  visit(program);
}
