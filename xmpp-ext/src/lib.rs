//! xmpp-ext
