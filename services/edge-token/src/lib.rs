//! The edge-token service: API tokens and their batch validation. For now it
//! serves only health and reflection; its API is still to come.

use sigil_runtime::{Context, Services};

/// Adds the edge-token services to `services`. None yet: the listener
/// carries health and reflection only.
pub fn add_to(_services: &mut Services, _context: &Context) {}
