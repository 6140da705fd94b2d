//! The write share of the mixed profile: CreateSession, then RevokeSession.

use sigil_proto::v1 as pb;

use crate::scenario::{AdminBearer, CallFailure, Clients};

/// Creates a pending session and revokes it, as one operation.
pub async fn create_and_revoke(
    clients: &mut Clients,
    admin: &AdminBearer,
) -> Result<(), CallFailure> {
    let created = clients
        .issuer
        .create_session(pb::CreateSessionRequest {
            subject: "bench-mixed".into(),
            ..Default::default()
        })
        .await?
        .into_inner();
    clients
        .issuer
        .revoke_session(admin.request(pb::RevokeSessionRequest {
            session_id: created.session_id,
        }))
        .await?;
    Ok(())
}
