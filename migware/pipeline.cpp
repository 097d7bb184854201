#include "migware/pipeline.hpp"

namespace migware {

bool run_to_end(sniffer::PacketSource& source, Pipeline& pipeline) {
    const sniffer::LinkType link = source.link();
    sniffer::RawFrame frame;
    for (;;) {
        switch (source.next(frame)) {
            case sniffer::ReadStatus::Frame:
                pipeline.on_frame(frame, link);
                break;
            case sniffer::ReadStatus::End:
                return true;
            case sniffer::ReadStatus::Error:
                return false;
        }
    }
}

}  // namespace migware
