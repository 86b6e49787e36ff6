/**
 * The command line of a ConureDB member run as a local process, shared by `conurectl dev cluster`
 * (src/cli/dev-cluster.ts) and the platform's local driver (src/platform/drivers/local), so both
 * start members exactly as the Helm chart's pods are started: the bootstrap member with
 * `--bootstrap` (and the seeds, to rejoin after losing its disk), the others with `--join`.
 * Pure.
 */
import type { PlannedMember } from './topology.js';

/** A member on this host: its addresses (host:port), data directory and log file. */
export interface LocalMember {
  id: string;
  role: PlannedMember['role'];
  bootstrap: boolean;
  http: string;
  raft: string;
  client: string;
  dataDir: string;
  logFile: string;
}

/**
 * The `conured` arguments of member `m`; `seeds` are the voters' HTTP URLs to join through. With
 * `peerSecretFile`, members authenticate each other with that cluster secret.
 */
export function conuredArgs(m: LocalMember, seeds: string[], peerSecretFile?: string): string[] {
  return [
    '--node-id', m.id, '--data-dir', m.dataDir,
    '--http-addr', m.http, '--raft-addr', m.raft, '--client-addr', m.client,
    '--advertise-http', m.http, '--advertise-raft', m.raft,
    // The bootstrap member gets the seeds too: if its disk is lost it joins the running cluster
    // instead of founding a second one.
    ...(m.bootstrap ? ['--bootstrap'] : ['--bootstrap=false']),
    '--join', seeds.join(','), '--join-backoff', '500ms',
    ...(m.role === 'arbiter' ? ['--role', 'arbiter'] : []),
    ...(peerSecretFile ? ['--peer-secret-file', peerSecretFile] : []),
  ];
}
