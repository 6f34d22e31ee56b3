// SPDX-License-Identifier: GPL-2.0

//! Why a run ended, and the exit status `pacifica run` reports for it.
//!
//! | status | meaning                                                        |
//! |--------|----------------------------------------------------------------|
//! | 0      | the guest halted (HLT; nothing can wake it)                    |
//! | v      | the guest wrote byte v to the exit port 0xf4                    |
//! | 1      | the VMM failed: bad arguments, unloadable image, no device, a failed ioctl, an unsupported paging mode |
//! | 2      | the command line could not be parsed                           |
//! | 122    | the guest reset the machine (port 0xcf9, the 8042's 0xfe)      |
//! | 123    | VMRUN refused the guest state (failed entry)                   |
//! | 124    | the guest shut down (triple fault)                             |
//! | 125    | internal error: an exit the module could not handle, an exit reason the VMM does not know, or a malformed run page |
//!
//! A guest can of course write 1, 2 or 123-125 to the exit port itself;
//! the diagnostic line on stderr tells the cases apart.

use crate::backend::kvm::exit::KVM_SUBERROR_BASE;
use crate::uapi::{self, InternalExit};

/// Status when the VMM itself fails.
pub const STATUS_VMM_ERROR: u8 = 1;
/// Status when the command line is invalid (clap's convention).
pub const STATUS_USAGE: u8 = 2;
/// Status when the guest resets the machine.
pub const STATUS_RESET: u8 = 122;
/// Status when VMRUN refuses the guest state.
pub const STATUS_FAIL_ENTRY: u8 = 123;
/// Status when the guest shuts down (triple fault).
pub const STATUS_SHUTDOWN: u8 = 124;
/// Status for internal errors and exits the VMM cannot handle.
pub const STATUS_INTERNAL_ERROR: u8 = 125;

/// Why the guest stopped running.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stop {
    /// The guest executed HLT.
    Halted,
    /// The guest wrote this byte to the exit port.
    ExitPort(u8),
    /// The guest shut down (triple fault).
    Shutdown,
    /// The guest reset the machine through a reset port.
    Reset,
    /// VMRUN refused the guest state.
    FailEntry(InternalExit),
    /// The module could not handle an exit.
    InternalError(InternalExit),
    /// The module reported an exit reason this VMM does not know.
    Unknown(u32),
    /// The run page could not be decoded; the text says why.
    BadRunPage(String),
}

impl Stop {
    /// The exit status of `pacifica run`.
    pub fn status(&self) -> u8 {
        match self {
            Stop::Halted => 0,
            Stop::ExitPort(status) => *status,
            Stop::Shutdown => STATUS_SHUTDOWN,
            Stop::Reset => STATUS_RESET,
            Stop::FailEntry(_) => STATUS_FAIL_ENTRY,
            Stop::InternalError(_) | Stop::Unknown(_) | Stop::BadRunPage(_) => {
                STATUS_INTERNAL_ERROR
            }
        }
    }

    /// The one-line diagnostic for stderr, or `None` for a normal end.
    /// `rip` is the guest RIP the run page reported at the exit.
    pub fn diagnostic(&self, rip: u64) -> Option<String> {
        let text = match self {
            Stop::Halted | Stop::ExitPort(_) => return None,
            Stop::Shutdown => format!("guest shut down (triple fault) at rip {rip:#x}"),
            Stop::Reset => format!("guest reset the machine at rip {rip:#x}"),
            Stop::FailEntry(i) => format!(
                "VMRUN refused the guest state (failed entry, exit code {:#x}, exit_info_1 {:#x}, exit_info_2 {:#x}) at rip {:#x}",
                i.exit_code, i.exit_info_1, i.exit_info_2, i.rip
            ),
            Stop::InternalError(i) => format!(
                "internal error: {} (exit code {:#x}, exit_info_1 {:#x}, exit_info_2 {:#x}, exit_int_info {:#x}) at rip {:#x}{}",
                suberror_name(i.suberror),
                i.exit_code,
                i.exit_info_1,
                i.exit_info_2,
                i.exit_int_info,
                i.rip,
                insn_bytes(i)
            ),
            Stop::Unknown(reason) => format!("unknown exit reason {reason} at rip {rip:#x}"),
            Stop::BadRunPage(why) => format!("malformed run page: {why} at rip {rip:#x}"),
        };
        Some(format!("pacifica: {text}"))
    }
}

/// ", instruction bytes 0f 0b ..." when the module sent the bytes of an
/// instruction it could not emulate.
fn insn_bytes(i: &InternalExit) -> String {
    let n = usize::from(i.insn_len).min(i.insn_bytes.len());
    if n == 0 {
        return String::new();
    }
    let hex: Vec<String> = i.insn_bytes[..n].iter().map(|b| format!("{b:02x}")).collect();
    format!(", instruction bytes {}", hex.join(" "))
}

/// Words for an `InternalExit::suberror`.
fn suberror_name(suberror: u32) -> String {
    match suberror {
        uapi::PACIFICA_INTERNAL_UNHANDLED_EXIT => "unhandled SVM exit".to_owned(),
        uapi::PACIFICA_INTERNAL_EMULATION => "instruction emulation failed".to_owned(),
        uapi::PACIFICA_INTERNAL_NPF_IN_RAM => "nested page fault inside guest RAM".to_owned(),
        kvm if kvm > KVM_SUBERROR_BASE && kvm < KVM_SUBERROR_BASE + 0x100 => {
            format!("KVM internal error, suberror {}", kvm - KVM_SUBERROR_BASE)
        }
        other => format!("suberror {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_the_documented_ones() {
        assert_eq!(Stop::Halted.status(), 0);
        assert_eq!(Stop::ExitPort(7).status(), 7);
        assert_eq!(Stop::Shutdown.status(), 124);
        assert_eq!(Stop::FailEntry(InternalExit::default()).status(), 123);
        assert_eq!(Stop::InternalError(InternalExit::default()).status(), 125);
        assert_eq!(Stop::Unknown(99).status(), 125);
        assert_eq!(Stop::BadRunPage("x".into()).status(), 125);
    }

    #[test]
    fn normal_ends_print_nothing() {
        assert_eq!(Stop::Halted.diagnostic(0x1000), None);
        assert_eq!(Stop::ExitPort(3).diagnostic(0x1000), None);
    }

    #[test]
    fn diagnostics_name_the_exit_and_rip() {
        assert_eq!(
            Stop::Shutdown.diagnostic(0x10_0020).unwrap(),
            "pacifica: guest shut down (triple fault) at rip 0x100020"
        );
        assert_eq!(
            Stop::Unknown(42).diagnostic(0x5).unwrap(),
            "pacifica: unknown exit reason 42 at rip 0x5"
        );
        let internal = InternalExit {
            suberror: uapi::PACIFICA_INTERNAL_EMULATION,
            exit_code: 0x400,
            exit_info_2: 0xfee0_0000,
            rip: 0x20_0010,
            ..Default::default()
        };
        let text = Stop::InternalError(internal).diagnostic(0).unwrap();
        assert!(
            text.starts_with(
                "pacifica: internal error: instruction emulation failed (exit code 0x400"
            ),
            "{text}"
        );
        assert!(text.contains("exit_info_2 0xfee00000"), "{text}");
        assert!(text.ends_with("at rip 0x200010"), "{text}");
        let mut bytes = [0u8; 15];
        bytes[..2].copy_from_slice(&[0xf7, 0x1b]);
        let with_bytes = InternalExit { insn_len: 2, insn_bytes: bytes, ..internal };
        let text = Stop::InternalError(with_bytes).diagnostic(0).unwrap();
        assert!(text.ends_with("at rip 0x200010, instruction bytes f7 1b"), "{text}");
        let entry = InternalExit {
            exit_code: u64::MAX,
            rip: 0x10_000c,
            ..Default::default()
        };
        let text = Stop::FailEntry(entry).diagnostic(0).unwrap();
        assert!(
            text.starts_with("pacifica: VMRUN refused the guest state"),
            "{text}"
        );
        assert!(text.ends_with("at rip 0x10000c"), "{text}");
    }
}
