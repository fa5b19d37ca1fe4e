/**
 * Wire facts of the PostgreSQL v3 protocol, stated once.
 * https://www.postgresql.org/docs/current/protocol-message-formats.html
 */

// Every typed message is a one-byte code followed by an int32 length that
// includes itself but NOT the code byte. Startup-phase packets have no code.
export const TYPED_HEADER = 5;
export const STARTUP_HEADER = 4;

/** Startup packets are tiny; PostgreSQL itself caps them at 10000 bytes (MAX_STARTUP_PACKET_LENGTH). */
export const MAX_STARTUP_PACKET = 10_000;

export const StartupCode = {
  Protocol3: 196608, // 3 << 16 | 0
  CancelRequest: 80877102, // 1234 << 16 | 5678
  SSLRequest: 80877103, // 1234 << 16 | 5679
  GSSENCRequest: 80877104, // 1234 << 16 | 5680
} as const;

/** Frontend (client -> server) message codes. */
export const enum Frontend {
  Bind = 0x42, // B
  Close = 0x43, // C
  Describe = 0x44, // D
  Execute = 0x45, // E
  FunctionCall = 0x46, // F
  Flush = 0x48, // H
  Parse = 0x50, // P
  Query = 0x51, // Q
  Sync = 0x53, // S
  Terminate = 0x58, // X
  CopyFail = 0x66, // f
  CopyDone = 0x63, // c
  CopyData = 0x64, // d
  PasswordMessage = 0x70, // p (also SASLInitialResponse / SASLResponse)
}

/** Backend (server -> client) message codes. */
export const enum Backend {
  Authentication = 0x52, // R
  BackendKeyData = 0x4b, // K
  ErrorResponse = 0x45, // E
  NoticeResponse = 0x4e, // N
  NotificationResponse = 0x41, // A
  ParameterStatus = 0x53, // S
  ReadyForQuery = 0x5a, // Z
  NegotiateProtocolVersion = 0x76, // v
}

export const enum AuthCode {
  Ok = 0,
  CleartextPassword = 3,
  MD5Password = 5,
  SASL = 10,
  SASLContinue = 11,
  SASLFinal = 12,
}

/** SQLSTATEs Sluice itself raises. https://www.postgresql.org/docs/current/errcodes-appendix.html */
export const SqlState = {
  ConnectionFailure: '08006',
  ServerRejectedConnection: '08004',
  ProtocolViolation: '08P01',
  FeatureNotSupported: '0A000',
  InvalidAuthorization: '28000',
  InvalidPassword: '28P01',
  InvalidCatalogName: '3D000',
  InsufficientPrivilege: '42501',
  TooManyConnections: '53300',
  AdminShutdown: '57P01',
  CannotConnectNow: '57P03',
  IoError: '58030',
  InvalidParameterValue: '22023',
  ProgramLimitExceeded: '54000',
} as const;
export type SqlState = (typeof SqlState)[keyof typeof SqlState];
