//! Attribute macros for house handlers (skeleton; see the macros issue).
