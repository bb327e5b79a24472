using System;
using System.Collections.Generic;
using System.Runtime.InteropServices;
using System.Security.Principal;
public static class JitformLsa {
  [StructLayout(LayoutKind.Sequential, CharSet = CharSet.Unicode)]
  struct LSA_UNICODE_STRING { public ushort Length; public ushort MaximumLength; public string Buffer; }
  [StructLayout(LayoutKind.Sequential)]
  struct LSA_OBJECT_ATTRIBUTES { public int Length; public IntPtr RootDirectory; public IntPtr ObjectName; public int Attributes; public IntPtr SecurityDescriptor; public IntPtr SecurityQualityOfService; }
  [DllImport("advapi32.dll")] static extern uint LsaOpenPolicy(IntPtr system, ref LSA_OBJECT_ATTRIBUTES attributes, int access, out IntPtr handle);
  [DllImport("advapi32.dll")] static extern uint LsaEnumerateAccountsWithUserRight(IntPtr handle, LSA_UNICODE_STRING[] right, out IntPtr buffer, out int count);
  [DllImport("advapi32.dll")] static extern uint LsaAddAccountRights(IntPtr handle, byte[] sid, LSA_UNICODE_STRING[] rights, int count);
  [DllImport("advapi32.dll")] static extern uint LsaRemoveAccountRights(IntPtr handle, byte[] sid, [MarshalAs(UnmanagedType.U1)] bool all, LSA_UNICODE_STRING[] rights, int count);
  [DllImport("advapi32.dll")] static extern uint LsaClose(IntPtr handle);
  [DllImport("advapi32.dll")] static extern uint LsaFreeMemory(IntPtr buffer);
  [DllImport("advapi32.dll")] static extern int LsaNtStatusToWinError(uint status);
  const int POLICY_ALL = 0x00000FFF;
  const uint STATUS_NO_MORE_ENTRIES = 0x8000001A;
  static LSA_UNICODE_STRING[] Right(string name) {
    LSA_UNICODE_STRING u = new LSA_UNICODE_STRING();
    u.Buffer = name; u.Length = (ushort)(name.Length * 2); u.MaximumLength = (ushort)(name.Length * 2 + 2);
    return new LSA_UNICODE_STRING[] { u };
  }
  static IntPtr Open() {
    LSA_OBJECT_ATTRIBUTES a = new LSA_OBJECT_ATTRIBUTES();
    IntPtr h;
    uint st = LsaOpenPolicy(IntPtr.Zero, ref a, POLICY_ALL, out h);
    if (st != 0) { throw new Exception(Message("LsaOpenPolicy", st)); }
    return h;
  }
  public static string Message(string call, uint status) {
    return call + ": " + new System.ComponentModel.Win32Exception(LsaNtStatusToWinError(status)).Message + " (0x" + status.ToString("X8") + ")";
  }
  public static string[] Holders(string right) {
    IntPtr h = Open();
    try {
      IntPtr buf; int n;
      uint st = LsaEnumerateAccountsWithUserRight(h, Right(right), out buf, out n);
      if (st == STATUS_NO_MORE_ENTRIES) { return new string[0]; }
      if (st != 0) { throw new Exception(Message("LsaEnumerateAccountsWithUserRight", st)); }
      List<string> sids = new List<string>();
      for (int i = 0; i < n; i++) { sids.Add(new SecurityIdentifier(Marshal.ReadIntPtr(buf, i * IntPtr.Size)).Value); }
      LsaFreeMemory(buf);
      return sids.ToArray();
    } finally { LsaClose(h); }
  }
  static byte[] Sid(string sid) {
    SecurityIdentifier s = new SecurityIdentifier(sid);
    byte[] b = new byte[s.BinaryLength];
    s.GetBinaryForm(b, 0);
    return b;
  }
  public static uint Add(string right, string sid) {
    IntPtr h = Open();
    try { return LsaAddAccountRights(h, Sid(sid), Right(right), 1); } finally { LsaClose(h); }
  }
  public static uint Remove(string right, string sid) {
    IntPtr h = Open();
    try { return LsaRemoveAccountRights(h, Sid(sid), false, Right(right), 1); } finally { LsaClose(h); }
  }
}
