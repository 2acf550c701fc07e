// Jest runs two workers on two cores: one libtorch thread each avoids oversubscription.
import { setNumThreads } from '../lib/runtime';

setNumThreads(1);
