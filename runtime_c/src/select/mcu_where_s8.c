/* int8 Where with broadcasting. Refer to mcu_nn.h for details. */
#include "mcu_nn.h"

/* One pass of Where over the elements whose condition is (non-)zero, the pass's value requantized. */
typedef struct
{
    const mcu_requantize_params *value;
    int32_t when_nonzero; /**< 1: the elements whose condition is non-zero; 0: the others */
} mcu_where_pass;

/* One output row of a pass (an mcu_broadcast_row_fn); the elements of the other pass keep their value. */
static void mcu_where_row(const void *pass_,
                          const int8_t *condition,
                          int32_t step1,
                          const int8_t *value,
                          int32_t step2,
                          int32_t count,
                          int8_t *output)
{
    const mcu_where_pass *pass = (mcu_where_pass const *)pass_;
    for (int32_t i = 0; i < count; i++)
    {
        if ((condition[i * step1] != 0) == (pass->when_nonzero != 0))
        {
            output[i] = mcu_requantize_s8_value(pass->value, value[i * step2]);
        }
    }
}

MCU_API mcu_status mcu_where_s8(const mcu_context *ctx,
                                const mcu_where_params *params,
                                const mcu_broadcast_shape *true_shape,
                                const mcu_broadcast_shape *false_shape,
                                const int8_t *condition,
                                const int8_t *when_true,
                                const int8_t *when_false,
                                int8_t *output)
{
    (void)ctx;
    if (params == NULL || true_shape == NULL || false_shape == NULL || condition == NULL || when_true == NULL ||
        when_false == NULL || output == NULL)
    {
        return MCU_STATUS_ARG_ERROR;
    }
    const mcu_where_pass true_pass = {&params->when_true, 1};
    const mcu_where_pass false_pass = {&params->when_false, 0};
    mcu_broadcast_rows(true_shape, &true_pass, condition, when_true, output, mcu_where_row);
    mcu_broadcast_rows(false_shape, &false_pass, condition, when_false, output, mcu_where_row);
    return MCU_STATUS_OK;
}
