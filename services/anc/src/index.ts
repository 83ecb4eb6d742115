export type { ServiceEvent, ServiceEventListener } from '@clefnet/service-host';
export { Agent, type AgentNode, type AgentOptions, type AgentStats, type InstalledModule } from './agent.js';
export { type AncConfig, parseConfig } from './config.js';
export { AncNode, type AncNodeOptions, type NodeVe, type VeRole, type VeStatus } from './node.js';
export { type AncService, type AncServiceOptions, createAncService, NVRAM_FILE } from './server.js';
export { type TrafficFrame, TrafficLog } from './traffic.js';
export { AGENT_MAC, CHUNK_BYTES, fragment, NET_MAC, type Reassembled, Reassembler } from './wire.js';
