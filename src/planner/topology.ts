/**
 * ConureDB topology planner: a pure function from a deployment spec (what a user writes in the
 * Helm values or asks the platform for) to the cluster it implies — members, roles, quorum, the
 * PodDisruptionBudget, and on a scale-down which members leave raft and in what order.
 *
 * The Helm chart `charts/conuredb` implements the same rules in templates; the e2e test
 * `test/e2e/helm-chart.test.ts` renders the chart for a matrix of specs and asserts that both
 * agree. Change one only together with the other.
 *
 * Layout for `voters.replicas = 4`, `arbiter.mode = auto` (fullname `conure`):
 *
 *   StatefulSet conure-bootstrap (1)   conure-bootstrap-0   voter, --bootstrap=true
 *   StatefulSet conure           (3)   conure-0..conure-2   voters, --join <seeds>
 *   StatefulSet conure-arbiter   (1)   conure-arbiter-0     arbiter, --role arbiter
 *   5 members, quorum 3, PDB minAvailable 3
 *
 * No I/O, no clock, no randomness: equal inputs give equal outputs.
 */
import { InvalidArgumentError } from '../util/index.js';

/** `auto`: an arbiter only when the voter count is even; `always`: one arbiter; `never`: none. */
export type ArbiterMode = 'auto' | 'always' | 'never';

/** The raft role of a member. Arbiters vote and count in quorum but hold no state machine. */
export type MemberRole = 'voter' | 'arbiter';

/** Largest `voters.replicas` accepted; raft clusters beyond this only slow commits down. */
export const VOTERS_MAX = 15;

/** Longest resource-name prefix: `<fullname>-bootstrap` must stay ≤ 52 characters, the
 *  StatefulSet name limit that leaves room for the controller-revision-hash label. */
export const FULLNAME_LENGTH_MAX = 40;

/** Default ports, as in the `conured` flag defaults and the chart's values. */
export const DEFAULT_HTTP_PORT = 8081;
export const DEFAULT_RAFT_PORT = 7001;

const ARBITER_MODES: readonly ArbiterMode[] = ['auto', 'always', 'never'];
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/** What the user asks for. Mirrors the chart values named in each field's comment. */
export interface TopologySpec {
  /** `voters.replicas`: data-bearing members, INCLUDING the bootstrap pod. 1..VOTERS_MAX. */
  votersReplicas: number;
  /** `arbiter.mode`. */
  arbiterMode: ArbiterMode;
  /** `unsafe.allowEvenMembers`: accept `never` with an even voter count. Default false. */
  allowEvenMembers?: boolean;
  /** Resource-name prefix; see {@link chartFullname}. Default `conure`. */
  fullname?: string;
  /** Namespace, used only for the members' DNS addresses. Default `default`. */
  namespace?: string;
  /** `clusterDomain`. Default `cluster.local`. */
  clusterDomain?: string;
  /** `service.httpPort`. Default 8081. */
  httpPort?: number;
  /** `service.raftPort`. Default 7001. */
  raftPort?: number;
}

/** One raft member; `id` is the pod name, which is also the `--node-id`. */
export interface PlannedMember {
  id: string;
  role: MemberRole;
  /** The StatefulSet that owns the pod. */
  statefulSet: string;
  /** The pod's ordinal within its StatefulSet. */
  ordinal: number;
  /** True only for `<fullname>-bootstrap-0`, the pod started with `--bootstrap=true`. */
  bootstrap: boolean;
  /** `host:port` advertised for HTTP, through the headless service. */
  advertiseHttp: string;
  /** `host:port` advertised for raft, through the headless service. */
  advertiseRaft: string;
}

/** Names of every resource the chart creates for a fullname. */
export interface TopologyNames {
  bootstrap: string;
  voters: string;
  arbiter: string;
  /** Headless service selecting every pod (arbiters included); gives pods stable DNS. */
  headless: string;
  /** Client service (voters only): HTTP and etcd ports. */
  client: string;
  /** ConfigMap holding the desired replica counts and the lifecycle scripts. */
  topologyConfigMap: string;
  pdb: string;
}

/** The cluster a spec implies. */
export interface Topology {
  fullname: string;
  names: TopologyNames;
  /** Bootstrap first, then voters by ordinal, then the arbiter. */
  members: PlannedMember[];
  memberCount: number;
  voterCount: number;
  arbiterCount: number;
  /** Strict majority of `memberCount`: floor(n/2) + 1. */
  quorum: number;
  /** Members that may fail with the cluster still committing: memberCount − quorum. */
  faultTolerance: number;
  /** The PodDisruptionBudget, or null for a single member (a PDB would block every drain). */
  pdb: { minAvailable: number } | null;
  /** Desired replicas per StatefulSet name (all three StatefulSets, even at 0). */
  replicas: Record<string, number>;
  /** Legal but questionable choices, printed by the chart's NOTES.txt. */
  warnings: string[];
}

/** A member of the live raft configuration, as `GET /raft/config` lists it. */
export interface CurrentMember {
  id: string;
  suffrage: 'voter' | 'learner' | 'arbiter';
}

/** The ordered removal plan for a scale-down, see {@link planScaleDown}. */
export interface ScaleDownPlan {
  /** Members to remove from raft now, one at a time, in this order. */
  remove: string[];
  /** Surplus arbiters kept for now: fewer voters than desired are members yet (a scale-up that
   *  drops the arbiter), and removing it first would shrink fault tolerance while they join. */
  deferred: string[];
  /** Current members that stay. */
  keep: string[];
  /** Current members whose id does not follow this release's naming: never touched. */
  foreign: string[];
}

/**
 * Resource-name prefix chosen by the chart's `conuredb.fullname` helper:
 * `fullnameOverride` when set; otherwise `conure` for a release named `conure` or `conuredb`
 * (so the documented `helm install conuredb ./charts/conuredb` gives pods `conure-0`, …);
 * otherwise `<release>-conure`. Truncated to {@link FULLNAME_LENGTH_MAX} characters, without
 * a trailing dash.
 */
export function chartFullname(releaseName: string, fullnameOverride = ''): string {
  let name: string;
  if (fullnameOverride !== '') name = fullnameOverride;
  else if (releaseName === 'conure' || releaseName === 'conuredb') name = 'conure';
  else name = `${releaseName}-conure`;
  return name.slice(0, FULLNAME_LENGTH_MAX).replace(/-$/, '');
}

/** Resource names for a fullname. */
export function topologyNames(fullname: string): TopologyNames {
  return {
    bootstrap: `${fullname}-bootstrap`,
    voters: fullname,
    arbiter: `${fullname}-arbiter`,
    headless: `${fullname}-hs`,
    client: fullname,
    topologyConfigMap: `${fullname}-topology`,
    pdb: fullname,
  };
}

/** Strict majority of n members. */
export function quorumOf(memberCount: number): number {
  return Math.floor(memberCount / 2) + 1;
}

/**
 * Plans the cluster for a spec.
 * Throws `InvalidArgumentError` (code `invalid_argument`) for a spec that cannot work:
 * voters outside 1..VOTERS_MAX or not an integer, an unknown arbiter mode, a bad name, or
 * `never` with an even voter count unless `allowEvenMembers` is set. The messages are the
 * ones the chart's `fail` calls print.
 */
export function planTopology(spec: TopologySpec): Topology {
  const voters = spec.votersReplicas;
  if (!Number.isInteger(voters) || voters < 1) {
    throw new InvalidArgumentError(`voters.replicas must be a whole number >= 1 (it counts the bootstrap pod); got ${String(voters)}`);
  }
  if (voters > VOTERS_MAX) throw new InvalidArgumentError(`voters.replicas must be <= ${VOTERS_MAX}; got ${voters}`);
  if (!ARBITER_MODES.includes(spec.arbiterMode)) {
    throw new InvalidArgumentError(`arbiter.mode must be auto, always or never; got ${JSON.stringify(spec.arbiterMode)}`);
  }
  const fullname = spec.fullname ?? 'conure';
  if (fullname.length > FULLNAME_LENGTH_MAX || !DNS_LABEL.test(fullname)) {
    throw new InvalidArgumentError(`name ${JSON.stringify(fullname)} must be a DNS label of at most ${FULLNAME_LENGTH_MAX} characters`);
  }
  const arbiters = spec.arbiterMode === 'always' ? 1 : spec.arbiterMode === 'auto' && voters % 2 === 0 ? 1 : 0;
  const memberCount = voters + arbiters;
  const warnings: string[] = [];
  if (memberCount % 2 === 0) {
    if (spec.arbiterMode === 'never' && !spec.allowEvenMembers) {
      throw new InvalidArgumentError(
        `voters.replicas=${voters} with arbiter.mode=never gives an even membership of ${memberCount}, which tolerates no more failures than ${memberCount - 1} members; ` +
          'use an odd voter count, arbiter.mode=auto, or set unsafe.allowEvenMembers=true',
      );
    }
    warnings.push(`even membership (${memberCount} members, quorum ${quorumOf(memberCount)}) tolerates no more failures than ${memberCount - 1} members`);
  }
  if (voters === 1 && arbiters === 0) warnings.push('a single member has no redundancy: losing its volume loses the data');

  const namespace = spec.namespace ?? 'default';
  const domain = spec.clusterDomain ?? 'cluster.local';
  const httpPort = spec.httpPort ?? DEFAULT_HTTP_PORT;
  const raftPort = spec.raftPort ?? DEFAULT_RAFT_PORT;
  const names = topologyNames(fullname);
  const member = (statefulSet: string, ordinal: number, role: MemberRole, bootstrap: boolean): PlannedMember => {
    const id = `${statefulSet}-${ordinal}`;
    const host = `${id}.${names.headless}.${namespace}.svc.${domain}`;
    return { id, role, statefulSet, ordinal, bootstrap, advertiseHttp: `${host}:${httpPort}`, advertiseRaft: `${host}:${raftPort}` };
  };
  const members: PlannedMember[] = [member(names.bootstrap, 0, 'voter', true)];
  for (let i = 0; i < voters - 1; i++) members.push(member(names.voters, i, 'voter', false));
  for (let i = 0; i < arbiters; i++) members.push(member(names.arbiter, i, 'arbiter', false));

  const quorum = quorumOf(memberCount);
  return {
    fullname,
    names,
    members,
    memberCount,
    voterCount: voters,
    arbiterCount: arbiters,
    quorum,
    faultTolerance: memberCount - quorum,
    pdb: memberCount > 1 ? { minAvailable: quorum } : null,
    replicas: { [names.bootstrap]: 1, [names.voters]: voters - 1, [names.arbiter]: arbiters },
    warnings,
  };
}

/**
 * Which current members leave raft to reach `desired`, in order: voters of the `<fullname>`
 * StatefulSet with an ordinal ≥ its desired replicas, highest ordinal first, then arbiters of
 * `<fullname>-arbiter` the same way. A surplus arbiter is removed only when the voters that stay
 * (suffrage `voter`; learners do not count) are at least `desired.voterCount`; otherwise it is
 * `deferred`, so that a scale-up that drops the arbiter (auto mode, even → odd) does not lower
 * fault tolerance before the new voters are promoted. The bootstrap member is never removed;
 * ids that do not follow this release's naming are `foreign` and left alone. Removing one
 * member at a time from a healthy cluster never loses quorum: each step leaves n − 1 live
 * members of an (n − 1)-member configuration.
 *
 * The chart's `files/scale-down.sh` hook implements exactly this rule on the live membership.
 */
export function planScaleDown(current: readonly CurrentMember[], desired: Topology): ScaleDownPlan {
  const { names } = desired;
  const voterLimit = desired.replicas[names.voters] ?? 0;
  const arbiterLimit = desired.replicas[names.arbiter] ?? 0;
  const excess: { id: string; kind: number; ordinal: number; suffrage: CurrentMember['suffrage'] }[] = [];
  const keep: string[] = [];
  const foreign: string[] = [];
  for (const { id, suffrage } of current) {
    const owner = ownerOf(id, names);
    if (!owner) foreign.push(id);
    else if (owner.kind === 'voters' && owner.ordinal >= voterLimit) excess.push({ id, kind: 0, ordinal: owner.ordinal, suffrage });
    else if (owner.kind === 'arbiter' && owner.ordinal >= arbiterLimit) excess.push({ id, kind: 1, ordinal: owner.ordinal, suffrage });
    else keep.push(id);
  }
  excess.sort((a, b) => a.kind - b.kind || b.ordinal - a.ordinal);
  const liveVoters = current.filter((m) => m.suffrage === 'voter').length;
  const keptVoters = liveVoters - excess.filter((e) => e.kind === 0 && e.suffrage === 'voter').length;
  const remove: string[] = [];
  const deferred: string[] = [];
  for (const e of excess) {
    if (e.kind === 1 && keptVoters < desired.voterCount) deferred.push(e.id);
    else remove.push(e.id);
  }
  return { remove, deferred, keep, foreign };
}

/** Maps a member id to the StatefulSet of this release that owns it, if any. */
function ownerOf(id: string, names: TopologyNames): { kind: 'bootstrap' | 'voters' | 'arbiter'; ordinal: number } | undefined {
  // Longest prefixes first: `conure-arbiter-0` also starts with `conure-`.
  const candidates: [string, 'bootstrap' | 'voters' | 'arbiter'][] = [
    [`${names.arbiter}-`, 'arbiter'],
    [`${names.bootstrap}-`, 'bootstrap'],
    [`${names.voters}-`, 'voters'],
  ];
  for (const [prefix, kind] of candidates) {
    if (!id.startsWith(prefix)) continue;
    const rest = id.slice(prefix.length);
    return /^(0|[1-9][0-9]*)$/.test(rest) ? { kind, ordinal: Number(rest) } : undefined;
  }
  return undefined;
}
