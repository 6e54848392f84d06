#include "hsm/hsm_signer.h"
