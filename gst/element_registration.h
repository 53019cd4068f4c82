// The elements of the liveavatar plugin; plugin.cpp registers each.
#pragma once

#include <gst/gst.h>

G_BEGIN_DECLS

GST_ELEMENT_REGISTER_DECLARE(laaudiofeat);
GST_ELEMENT_REGISTER_DECLARE(lavaedecode);
GST_ELEMENT_REGISTER_DECLARE(liveavatargen);
GST_ELEMENT_REGISTER_DECLARE(liveavatarbin);

G_END_DECLS
