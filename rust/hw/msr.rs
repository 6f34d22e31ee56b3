// SPDX-License-Identifier: GPL-2.0

//! MSR numbers (APM Vol. 2, appendix A; Vol. 2, 15.30 for SVM's). The
//! bits of EFER are in `hw::svm::efer`. Depends on `core` only.

pub const TSC: u32 = 0x0000_0010;
pub const APIC_BASE: u32 = 0x0000_001b;
pub const SYSENTER_CS: u32 = 0x0000_0174;
pub const SYSENTER_ESP: u32 = 0x0000_0175;
pub const SYSENTER_EIP: u32 = 0x0000_0176;
pub const PAT: u32 = 0x0000_0277;
pub const TSC_DEADLINE: u32 = 0x0000_06e0;
/// The first x2APIC register MSR: register offset `off` is `X2APIC_BASE + off / 16`.
pub const X2APIC_BASE: u32 = 0x0000_0800;
pub const X2APIC_LAST: u32 = 0x0000_08ff;
pub const EFER: u32 = 0xc000_0080;
pub const STAR: u32 = 0xc000_0081;
pub const LSTAR: u32 = 0xc000_0082;
pub const CSTAR: u32 = 0xc000_0083;
pub const SFMASK: u32 = 0xc000_0084;
pub const FS_BASE: u32 = 0xc000_0100;
pub const GS_BASE: u32 = 0xc000_0101;
pub const KERNEL_GS_BASE: u32 = 0xc000_0102;
/// SVM's control MSR (APM 15.30.1).
pub const VM_CR: u32 = 0xc001_0114;
/// Where VMRUN saves host state (APM 15.30.4).
pub const VM_HSAVE_PA: u32 = 0xc001_0117;
