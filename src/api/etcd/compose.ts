import type { Replicator } from '../../seams/index.js';
import type { StateStore } from '../../storage/index.js';
import {
  memberIdOf, MvccKvService, Lessor, type LeaseClock, type LeaseId, MvccService, type MvccLimits, type MvccStateMachine, WatchHub, type WatchHubOptions,
} from '../../mvcc/index.js';
import type { Logger } from '../../util/index.js';
import { EtcdServices, type MembershipForwarder } from './services.js';

export interface EtcdApiOptions {
  store: StateStore;
  /** The state machine the replicator applies to (constructed over `store`). */
  sm: MvccStateMachine;
  replicator: Replicator;
  clusterName?: string;
  /** Advertised client URL of this member, e.g. `http://10.0.0.5:2379`. */
  clientUrl?: string;
  limits?: Partial<MvccLimits>;
  watch?: WatchHubOptions;
  clock?: LeaseClock;
  log?: Logger;
  /** Forwards a keep-alive to the leader when this member is a follower (see MvccService). */
  forwardKeepAlive?: (id: LeaseId) => Promise<number>;
  /** Forwards Cluster membership changes to the leader when this member is a follower. */
  forwardMembership?: MembershipForwarder;
}

export interface EtcdApi {
  services: EtcdServices;
  mvcc: MvccService;
  hub: WatchHub;
  lessor: Lessor;
  /** The seed REST API's `/kv` view of the same keyspace. */
  kv: MvccKvService;
  /** Stops the lessor's and the hub's timers. The store and replicator stay owned by the caller. */
  close(): void;
}

/**
 * Wires the etcd API's runtime pieces around an already running state machine and replicator:
 *
 * ```
 *   store ─► MvccStateMachine ─► Replicator            (built by the caller, e.g. conured)
 *                 │    ▲
 *                 │    └── Lessor (proposes revokes on the leader; started here)
 *                 └──────► WatchHub
 *   MvccService(replicator, sm, lessor) ─► EtcdServices ─► createEtcdGrpcServer / registerEtcdGateway
 * ```
 */
export function createEtcdApi(opts: EtcdApiOptions): EtcdApi {
  const lessorOpts: ConstructorParameters<typeof Lessor>[0] = { sm: opts.sm, replicator: opts.replicator };
  if (opts.clock) lessorOpts.clock = opts.clock;
  if (opts.log) lessorOpts.log = opts.log;
  const lessor = new Lessor(lessorOpts);
  lessor.start();
  const hub = new WatchHub(opts.sm, opts.watch);
  const mvcc = new MvccService({
    replicator: opts.replicator,
    sm: opts.sm,
    lessor,
    store: opts.store,
    memberId: memberIdOf(opts.replicator.status().id).toString(),
    limits: opts.limits ?? {},
    ...(opts.forwardKeepAlive ? { forwardKeepAlive: opts.forwardKeepAlive } : {}),
  });
  const servicesOpts: ConstructorParameters<typeof EtcdServices>[0] = { mvcc, hub, store: opts.store };
  if (opts.clusterName) servicesOpts.clusterName = opts.clusterName;
  if (opts.clientUrl) servicesOpts.clientUrl = opts.clientUrl;
  if (opts.forwardMembership) servicesOpts.forwardMembership = opts.forwardMembership;
  const services = new EtcdServices(servicesOpts);
  return {
    services, mvcc, hub, lessor,
    kv: new MvccKvService(mvcc),
    close() {
      lessor.stop();
      hub.close();
    },
  };
}
