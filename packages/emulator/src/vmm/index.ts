export { Core, type CoreLimits, type CoreMessage, DEFAULT_CORE_LIMITS, type TaskHandle } from './core.js';
export { VmmError, type VmmErrorCode } from './errors.js';
export {
  createVesFromDisk,
  type DiskBoot,
  type InstallVe,
  installVe,
  realFsProfileFiles,
} from './install.js';
export { KEY_ADDRESS, KeyService, type KeyServiceOptions } from './keytrap.js';
export {
  bootMachineKey,
  installMachineKey,
  MACHINE_KEY_AT,
  MACHINE_KEY_BYTES,
  type MachineTriple,
} from './machinekey.js';
export { PagePool } from './pages.js';
export { directoryFiles, loadProfile, type ProfileFiles, parseProfile } from './profile.js';
export { realCpl, realRing } from './rings.js';
export { ringsUsed, type SdtCounters, type SdtPolicy, ShadowSet, shadowHi } from './sdt.js';
export {
  type AdaptiveRule,
  DEFAULT_ADAPTIVE,
  HOLE,
  KEY_STATUS,
  type KeyAnswer,
  type KeyTrapHook,
  type PolicyChoice,
  type VedtOptions,
  type VeStats,
  VirtualEnvironment,
  type VmmEvent,
} from './ve.js';
export { substituteHi, type VedtCounters, type VedtMode, VedtTable, type VedtWriteMethod } from './vedt.js';
export { type VeKeyEntry, VeKeys } from './vekeys.js';
export { diskRegion, KNOWN_GUESTS, recognise, type VeProfile, Vmm, type VmmOptions } from './vmm.js';
