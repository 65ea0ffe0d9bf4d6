//! Test-support package for the observer workspace (not published).
