"""Dataset profiles and drift statistics: mergeable column summaries with KLL quantile sketches,
built from a frame or a stream of chunks, saved as versioned JSON, and compared with PSI,
Jensen-Shannon, chi-squared, Wasserstein and KS tests computed from binned counts. The data
layer profiles dataset versions with it; monitoring reuses the same profiles as drift references
and as per-window aggregates of logged predictions.
"""

from loopml.stats.columns import CategoricalProfile as CategoricalProfile
from loopml.stats.columns import ColumnProfile as ColumnProfile
from loopml.stats.columns import Moments as Moments
from loopml.stats.columns import NumericProfile as NumericProfile
from loopml.stats.columns import Top as Top
from loopml.stats.compare import ColumnDrift as ColumnDrift
from loopml.stats.compare import ProfileComparison as ProfileComparison
from loopml.stats.compare import compare_profiles as compare_profiles
from loopml.stats.dataset import DatasetProfile as DatasetProfile
from loopml.stats.dataset import ProfileBuilder as ProfileBuilder
from loopml.stats.dataset import merge_all as merge_all
from loopml.stats.dataset import profile as profile
from loopml.stats.sketch import QuantileSketch as QuantileSketch
from loopml.stats.stattests import DriftResult as DriftResult
from loopml.stats.stattests import DriftTest as DriftTest
from loopml.stats.stattests import default_test as default_test
from loopml.stats.stattests import drift_test_names as drift_test_names
from loopml.stats.stattests import get_drift_test as get_drift_test
from loopml.stats.stattests import register_drift_test as register_drift_test
from loopml.stats.stream import EdgeFinder as EdgeFinder
from loopml.stats.stream import profile_chunks as profile_chunks

__all__ = [
    "CategoricalProfile",
    "ColumnDrift",
    "ColumnProfile",
    "DatasetProfile",
    "DriftResult",
    "DriftTest",
    "EdgeFinder",
    "Moments",
    "NumericProfile",
    "ProfileBuilder",
    "ProfileComparison",
    "QuantileSketch",
    "Top",
    "compare_profiles",
    "default_test",
    "drift_test_names",
    "get_drift_test",
    "merge_all",
    "profile",
    "profile_chunks",
    "register_drift_test",
]
