//! The names of option values (`postilla_core::names`): every name an option accepts parses to
//! a value whose `as_str` and serde name are that name again, and an unknown one is refused
//! with the names it could have been.

use postilla_core::model::{DeviceChoice, MatmulKernel, Precision};
use postilla_core::ner::{Aggregation, Decoding, FunctionWords, WordBoundaries};
use postilla_core::topics::ChunkAggregation;
use postilla_core::train::TrainPrecision;

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
    round_trips(FunctionWords::NAMES, FunctionWords::as_str);
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
