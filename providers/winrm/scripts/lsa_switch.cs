using System;
using System.Runtime.InteropServices;
using System.Security.Principal;
public static class JitformLsa {
[StructLayout(LayoutKind.Sequential, CharSet = CharSet.Unicode)] struct U { public ushort L; public ushort M; public string B; }
[StructLayout(LayoutKind.Sequential)] struct A { public int L; public IntPtr R; public IntPtr N; public int At; public IntPtr S; public IntPtr Q; }
[DllImport("advapi32.dll")] static extern uint LsaOpenPolicy(IntPtr s, ref A a, int access, out IntPtr h);
[DllImport("advapi32.dll")] static extern uint LsaRemoveAccountRights(IntPtr h, byte[] sid, [MarshalAs(UnmanagedType.U1)] bool all, U[] r, int n);
[DllImport("advapi32.dll")] static extern uint LsaClose(IntPtr h);
public static uint Remove(string right, string sid) {
A a = new A(); IntPtr h; uint st = LsaOpenPolicy(IntPtr.Zero, ref a, 0x00000FFF, out h); if (st != 0) { return st; }
SecurityIdentifier s = new SecurityIdentifier(sid); byte[] b = new byte[s.BinaryLength]; s.GetBinaryForm(b, 0);
U u = new U(); u.B = right; u.L = (ushort)(right.Length * 2); u.M = (ushort)(right.Length * 2 + 2);
try { return LsaRemoveAccountRights(h, b, false, new U[] { u }, 1); } finally { LsaClose(h); }
}
}
