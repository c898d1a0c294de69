/* int8 PRelu with a broadcast int8 slope (TFLite Micro's PRELU). Refer to mcu_nn.h for details. */
#include "mcu_nn.h"

/* One output row; the input is contiguous, the slope steps by its innermost stride (1, or 0: one value). */
static void mcu_prelu_row(const mcu_prelu_params *params,
                          const int8_t *input,
                          const int8_t *alpha,
                          int32_t alpha_step,
                          int32_t count,
                          int8_t *output)
{
    for (int32_t i = 0; i < count; i++)
    {
        const int32_t x = input[i] + params->input_offset;
        int32_t v;
        if (x >= 0)
        {
            v = mcu_requantize(x, params->identity_multiplier, params->identity_shift);
        }
        else
        {
            /* |x| <= 255 and |alpha + offset| <= 255: the product fits in 17 bits. */
            const int32_t a = alpha[i * alpha_step] + params->alpha_offset;
            v = mcu_requantize(x * a, params->alpha_multiplier, params->alpha_shift);
        }
        /* Bound first: a saturated value plus the offset would overflow, and the clamp gives the same result. */
        output[i] = (int8_t)mcu_clamp(mcu_clamp(v, -256, 256) + params->output_offset, -128, 127);
    }
}

MCU_API mcu_status mcu_prelu_s8(const mcu_context *ctx,
                                const mcu_prelu_params *params,
                                const mcu_broadcast_shape *shape,
                                const int8_t *input,
                                const int8_t *alpha,
                                int8_t *output)
{
    (void)ctx;
    if (params == NULL || shape == NULL || input == NULL || alpha == NULL || output == NULL)
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
                mcu_prelu_row(params,
                              input + n * s1[0] + h * s1[1] + w * s1[2],
                              alpha + n * s2[0] + h * s2[1] + w * s2[2],
                              s2[3],
                              dims[3],
                              output + row * dims[3]);
            }
    return MCU_STATUS_OK;
}
