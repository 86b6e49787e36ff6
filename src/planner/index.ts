/**
 * planner: spec → ConureDB topology (members, roles, PDB) and the conured arguments of a
 * member, shared by the charts' tests, the platform and `conurectl dev cluster`.
 */
export {
  VOTERS_MAX, FULLNAME_LENGTH_MAX, DEFAULT_HTTP_PORT, DEFAULT_RAFT_PORT,
  chartFullname, topologyNames, quorumOf, planTopology, planScaleDown,
  type ArbiterMode, type MemberRole, type TopologySpec, type PlannedMember, type TopologyNames, type Topology,
  type CurrentMember, type ScaleDownPlan,
} from './topology.js';
export { conuredArgs, type LocalMember } from './conured-args.js';
