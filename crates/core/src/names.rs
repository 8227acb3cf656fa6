//! Names of option values. One table per fieldless enum gives its `FromStr` (what the command
//! line and configuration accept), its `as_str` (what provenance records) and its `NAMES`, so
//! the three cannot drift apart.

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

#[cfg(test)]
mod tests {
    use crate::model::device::DeviceChoice;
    use crate::model::encoder::MatmulKernel;
    use crate::model::precision::Precision;
    use crate::ner::decode::{Aggregation, Decoding, WordBoundaries};
    use crate::topics::nli::ChunkAggregation;
    use crate::train::TrainPrecision;

    /// Every name parses to a value whose `as_str` is that name again, and its serde name is
    /// the same (the configuration files and the command line agree).
    fn round_trips<T>(names: &[&str], as_str: fn(T) -> &'static str)
    where
        T: std::str::FromStr<Err = String> + serde::Serialize + Copy,
    {
        for name in names {
            let value: T = name.parse().unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(as_str(value), *name);
            assert_eq!(serde_json::to_value(value).ok(), Some(serde_json::Value::String((*name).to_owned())));
        }
    }

    #[test]
    fn names_round_trip_through_parse_as_str_and_serde() {
        round_trips(Aggregation::NAMES, Aggregation::as_str);
        round_trips(WordBoundaries::NAMES, WordBoundaries::as_str);
        round_trips(Decoding::NAMES, Decoding::as_str);
        round_trips(ChunkAggregation::NAMES, ChunkAggregation::as_str);
        round_trips(TrainPrecision::NAMES, TrainPrecision::as_str);
        round_trips(MatmulKernel::NAMES, MatmulKernel::as_str);
        round_trips(DeviceChoice::NAMES, DeviceChoice::as_str);
        round_trips(Precision::NAMES, Precision::as_str);
    }

    #[test]
    fn an_unknown_name_is_refused_with_the_accepted_ones() {
        assert_eq!(
            "mean".parse::<Aggregation>().unwrap_err(),
            "unknown aggregation \"mean\" (expected first, average or max)"
        );
        assert_eq!("gpu".parse::<DeviceChoice>().unwrap_err(), "unknown device \"gpu\" (expected cpu or cuda)");
        assert_eq!(
            "fp16".parse::<Precision>().unwrap_err(),
            "unknown precision \"fp16\" (expected auto, fp32, bf16 or int8)"
        );
    }
}
