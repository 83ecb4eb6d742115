export {
  type Confirm,
  DTM_CORE_PORT,
  Dtm,
  type DtmAction,
  type DtmEvent,
  type DtmMode,
  type DtmOptions,
  type DtmStats,
  type GatewayLink,
  type GatewayPortOptions,
  type HoldTimeout,
  OUTSIDE,
  type PortOptions,
  type ScanInput,
  type Scanner,
  type TransferInfo,
} from './dtm.js';
export {
  type FirewallConfig,
  FW_IN,
  FW_OUT,
  type VirtualFirewall,
  type VirtualFirewallOptions,
  virtualFirewall,
} from './firewall.js';
export * from './frame.js';
export { Gateway, type GatewayOptions, type GatewayStats } from './gateway.js';
export { decodeRecord, encodeRecord, type TransferRecord, type TransferState } from './record.js';
export { signatureScanner } from './scanner.js';
export { memorySpool, openBlockSpool, type Spool } from './spool.js';
