/* int8 multiply with broadcasting (TFLite Micro's MUL). Refer to mcu_nn.h for details. */
#include "mcu_nn.h"

/* One output row; each input steps by its innermost stride (1: contiguous, 0: one broadcast value). */
static void mcu_mul_row(const mcu_mul_params *params,
                        const int8_t *input1,
                        int32_t step1,
                        const int8_t *input2,
                        int32_t step2,
                        int32_t count,
                        int8_t *output)
{
    for (int32_t i = 0; i < count; i++)
    {
        /* |x + offset| <= 255, so the product fits in 17 bits. */
        const int32_t x1 = input1[i * step1] + params->input1_offset;
        const int32_t x2 = input2[i * step2] + params->input2_offset;
        const int32_t product = x1 * x2;
        const int32_t out =
            mcu_requantize(product, params->output_multiplier, params->output_shift) + params->output_offset;
        output[i] = (int8_t)mcu_clamp(out, params->activation.min, params->activation.max);
    }
}

MCU_API mcu_status mcu_mul_s8(const mcu_context *ctx,
                              const mcu_mul_params *params,
                              const mcu_broadcast_shape *shape,
                              const int8_t *input1,
                              const int8_t *input2,
                              int8_t *output)
{
    (void)ctx;
    if (params == NULL || shape == NULL || input1 == NULL || input2 == NULL || output == NULL)
    {
        return MCU_STATUS_ARG_ERROR;
    }
    const int32_t *dims = shape->out_dims;
    const int32_t *s1 = shape->in1_strides;
    const int32_t *s2 = shape->in2_strides;
    for (int32_t n = 0; n < dims[0]; n++)
        for (int32_t h = 0; h < dims[1]; h++)
            for (int32_t w = 0; w < dims[2]; w++)
            {
                const int32_t row = (n * dims[1] + h) * dims[2] + w;
                mcu_mul_row(params,
                            input1 + n * s1[0] + h * s1[1] + w * s1[2],
                            s1[3],
                            input2 + n * s2[0] + h * s2[1] + w * s2[2],
                            s2[3],
                            dims[3],
                            output + row * dims[3]);
            }
    return MCU_STATUS_OK;
}
