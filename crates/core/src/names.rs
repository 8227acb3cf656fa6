//! Names of option values. One table per fieldless enum gives its `FromStr` (what the command
//! line accepts), its `as_str` (what provenance records) and its `NAMES`, so the three cannot
//! drift apart; `crates/core/tests/option_names.rs` checks them against the serde names that
//! configuration files use.

/// The names as an English list of alternatives: `a`, `a or b`, `a, b or c`.
///
/// ```
/// use postilla_core::names::one_of;
/// assert_eq!(one_of(&["fp32"]), "fp32");
/// assert_eq!(one_of(&["cpu", "cuda"]), "cpu or cuda");
/// assert_eq!(one_of(&["first", "average", "max"]), "first, average or max");
/// ```
pub fn one_of(names: &[&str]) -> String {
    match names.split_last() {
        None => String::new(),
        Some((last, [])) => (*last).to_owned(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
    }
}

/// Implements `NAMES`, `as_str` and `FromStr` for a fieldless enum from a table of its
/// variants and their names; `$what` names the option in the error for an unknown name
/// ("unknown decoding \"x\" (expected viterbi or greedy)").
macro_rules! named_values {
    ($ty:ident, $what:literal, [$($variant:ident => $name:literal),+ $(,)?]) => {
        impl $ty {
            /// Every name this option accepts, in the order its errors list them.
            pub const NAMES: &'static [&'static str] = &[$($name),+];

            /// The name used on the command line and in provenance.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($ty::$variant => $name,)+
                }
            }
        }

        impl std::str::FromStr for $ty {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($name => Ok($ty::$variant),)+
                    other => Err(format!("unknown {} {other:?} (expected {})", $what, $crate::names::one_of(Self::NAMES))),
                }
            }
        }
    };
}

pub(crate) use named_values;
