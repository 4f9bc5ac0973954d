//! Classic BPF socket filters for the raw sockets (the ping engine's and the tracer's):
//! the few opcodes they use, attaching a program, and (for tests) an interpreter that runs
//! a program the way the kernel does.

use socket2::{SockFilter, Socket};

/// One classic BPF instruction: (code, jump if true, jump if false, k).
pub(crate) type Insn = (u16, u8, u8, u32);

/// X = 4 * (P[k] & 0xf): the IPv4 header length.
pub(crate) const LDX_B_MSH: u16 = 0xb1;
/// A = P[k].
pub(crate) const LD_B_ABS: u16 = 0x30;
/// A = P[k..k+2], big-endian.
pub(crate) const LD_H_ABS: u16 = 0x28;
/// A = P[k..k+4], big-endian.
pub(crate) const LD_W_ABS: u16 = 0x20;
/// A = P[X+k].
pub(crate) const LD_B_IND: u16 = 0x50;
/// A = P[X+k..X+k+2], big-endian.
pub(crate) const LD_H_IND: u16 = 0x48;
/// A = P[X+k..X+k+4], big-endian.
pub(crate) const LD_W_IND: u16 = 0x40;
/// A &= k.
pub(crate) const ALU_AND_K: u16 = 0x54;
/// pc += (A == k) ? jt : jf.
pub(crate) const JEQ_K: u16 = 0x15;
/// Keep k bytes (0: drop).
pub(crate) const RET_K: u16 = 0x06;

/// Keep the whole packet.
pub(crate) const KEEP: Insn = (RET_K, 0, 0, 0x0004_0000);
/// Drop the packet.
pub(crate) const DROP: Insn = (RET_K, 0, 0, 0);

/// Attaches `program` to `socket`.
pub(crate) fn attach(socket: &Socket, program: &[Insn]) -> std::io::Result<()> {
    let program: Vec<SockFilter> = program.iter().map(|&(code, jt, jf, k)| SockFilter::new(code, jt, jf, k)).collect();
    socket.attach_filter(&program)
}

/// Runs a classic BPF program the way the kernel does (a load past the end drops); returns
/// the bytes kept.
#[cfg(test)]
pub(crate) fn run(program: &[Insn], pkt: &[u8]) -> u32 {
    let (mut a, mut x, mut pc) = (0u32, 0u32, 0usize);
    let byte = |at: u32| pkt.get(at as usize).map(|&b| u32::from(b));
    let half = |at: u32| Some(byte(at)? << 8 | byte(at + 1)?);
    let word = |at: u32| Some(half(at)? << 16 | half(at + 2)?);
    loop {
        let (code, jt, jf, k) = program[pc];
        pc += 1;
        let loaded = match code {
            LDX_B_MSH => {
                let Some(b) = byte(k) else { return 0 };
                x = 4 * (b & 0xf);
                continue;
            }
            LD_B_ABS => byte(k),
            LD_H_ABS => half(k),
            LD_W_ABS => word(k),
            LD_B_IND => byte(x + k),
            LD_H_IND => half(x + k),
            LD_W_IND => word(x + k),
            ALU_AND_K => {
                a &= k;
                continue;
            }
            JEQ_K => {
                pc += usize::from(if a == k { jt } else { jf });
                continue;
            }
            RET_K => return k,
            other => panic!("unexpected opcode {other:#x}"),
        };
        match loaded {
            Some(v) => a = v,
            None => return 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interpreter_loads_and_jumps() {
        // Keep packets whose word at 2 is 0x01020304, after an IPv4-style header length.
        let program = [(LD_W_ABS, 0, 0, 2), (JEQ_K, 0, 1, 0x0102_0304), KEEP, DROP];
        assert_eq!(run(&program, &[0, 0, 1, 2, 3, 4]), KEEP.3);
        assert_eq!(run(&program, &[0, 0, 1, 2, 3, 5]), 0);
        assert_eq!(run(&program, &[0, 0, 1, 2, 3]), 0, "a load past the end drops");
        let indirect = [(LDX_B_MSH, 0, 0, 0), (LD_W_IND, 0, 0, 0), (JEQ_K, 0, 1, 0xaabb_ccdd), KEEP, DROP];
        let mut pkt = vec![0x41, 0, 0, 0];
        pkt.extend_from_slice(&[0xaa, 0xbb, 0xcc, 0xdd]);
        assert_eq!(run(&indirect, &pkt), KEEP.3);
        let masked = [(LD_B_ABS, 0, 0, 0), (ALU_AND_K, 0, 0, 0x0f), (JEQ_K, 0, 1, 0x02), KEEP, DROP];
        assert_eq!(run(&masked, &[0xf2]), KEEP.3);
        assert_eq!(run(&masked, &[0xf3]), 0);
    }
}
