"""Training: losses, metrics, the fit / evaluate / predict loop, callbacks, ensembles,
transfer learning."""
from . import callbacks, losses, metrics, optimizers, sharding
from .callbacks import EarlyStopping, LambdaCallback, ModelCheckpoint
from .ensemble import Ensemble, ensemble
from .sharding import (FSDP, DataParallel, Layout, LayoutMap, TensorParallel,
                       layout_table, param_paths, shard, sharded_init)
from .loop import History, TrainState, evaluate, fit, predict
from .transfer import freeze, take, trainable_mask
