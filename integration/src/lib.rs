//! chamber-lab
