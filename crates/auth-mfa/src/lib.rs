//! writ-auth-mfa owns who a caller is and what they may do: passwords (argon2id), TOTP second
//! factor with replay refusal, database-backed sessions and JWTs, lockout, step-up re-authentication
//! and the role permission matrix. It never sees warrant content and never decides workflow state.
