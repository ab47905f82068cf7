import { randomUUID } from 'node:crypto';
import { ECS_VERSION, type Alert } from '../../../src/ecs/types.js';

/** A complete alert as the engine builds it; `overrides` replaces top-level parts. */
export function makeAlert(index: number, overrides: Partial<Alert> = {}): Alert {
  const now = new Date(Date.UTC(2026, 10, 28, 5, 0, 0, index % 1000)).toISOString();
  return {
    '@timestamp': now,
    message: 'Interactive shell spawned by a web server',
    event: {
      kind: 'alert',
      category: ['process'],
      type: ['start'],
      action: 'exec',
      id: randomUUID(),
      created: now,
      module: 'execsentry',
      dataset: 'execsentry.alerts',
      severity: 73,
      risk_score: 73,
    },
    ecs: { version: ECS_VERSION },
    process: {
      pid: 4000 + index,
      entity_id: `entity-${index}`,
      executable: '/usr/bin/bash',
      name: 'bash',
      args: ['bash', '-i', `marker-${index}`],
      args_count: 3,
      command_line: `bash -i marker-${index}`,
      working_directory: '/var/www',
      interactive: true,
      tty: { char_device: { major: 136, minor: 3 } },
      user: { id: '33', name: 'www-data' },
      parent: { pid: 100, executable: '/usr/sbin/apache2', name: 'apache2' },
    },
    user: { id: '33', name: 'www-data' },
    host: { name: 'testhost', hostname: 'testhost', architecture: 'x86_64', os: { type: 'linux', kernel: '6.1.0' } },
    agent: { type: 'execsentry', version: '0.1.0', id: 'agent-1' },
    rule: { id: 'web-shell-1', uuid: '6f1f3f9e-5a52-4d8e-9a3c-0c2a6b7f4f10', name: 'Interactive shell spawned by a web server', version: '1' },
    execsentry: { rule: { type: 'query' } },
    ...overrides,
  };
}
